"""JSONata as the platform evaluates it: in step fields (the REST connector) and in the
mappers on a flow's edges (the local platform's router), with ``$getPassthrough()``,
``$getFlowVariables()`` and ``$moment()``, each evaluation within its own time and depth
budget."""

"""Tools for local runs, not part of the worker the platform deploys: ``exec`` on one
message, sign-in to a provider, credentials files, the local platform and the demo."""

"""What talks to the platform over HTTP: step data and account keys, object storage, and the
service calls (verifyCredentials, getMetaModel, selectModel) with their result."""

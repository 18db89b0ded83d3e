"""The HTTP layer: FastAPI app, schemas, routes, problem responses."""

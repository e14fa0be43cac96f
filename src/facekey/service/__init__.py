"""The facekey HTTP service (FastAPI): app factory, routes, auth and problem responses."""

from talaria_storage.testing.backend_suite import BackendConformance

__all__ = ["BackendConformance"]

from talaria_storage.testing.backend_suite import BackendConformance
import pytest
class TestRocks(BackendConformance):
    @pytest.fixture
    def backend(self, rocksdb_backend):
        return rocksdb_backend

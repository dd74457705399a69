from talaria_storage.testing.backend_suite import BackendConformance
import pytest
class TestGCS(BackendConformance):
    listing_count = 250
    @pytest.fixture
    def backend(self, gcs_backend):
        return gcs_backend

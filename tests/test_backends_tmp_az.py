from talaria_storage.testing.backend_suite import BackendConformance
import pytest
class TestAz(BackendConformance):
    listing_count = 250
    @pytest.fixture
    def backend(self, azure_backend):
        return azure_backend

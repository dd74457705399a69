from talaria_storage.testing.backend_suite import BackendConformance
import pytest
class TestS3(BackendConformance):
    listing_count = 250
    @pytest.fixture
    def backend(self, s3_backend):
        return s3_backend

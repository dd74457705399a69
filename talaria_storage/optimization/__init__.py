"""The storage optimizer: analyze a store, estimate what each strategy saves, and apply them."""

"""The WooCommerce connector (REST API ``wc/v3``) and its sandbox."""

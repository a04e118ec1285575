"""Load-time enrichment of normalized events (GeoIP and ASN today): see geoip.py."""

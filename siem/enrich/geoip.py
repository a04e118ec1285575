"""GeoIP and ASN enrichment from MaxMind-format databases the user configures (none is bundled: licence).

``enrich.geoip_city`` (a GeoIP2/GeoLite2 City or Country database) fills ``source.geo.*`` and
``destination.geo.*``; ``enrich.geoip_asn`` (GeoLite2 ASN) fills ``source.as.*`` and ``destination.as.*``.
Only public (globally routable) addresses are looked up: a private or documentation address has no
place on a map, and a lookup would only cost time. Results are kept in an LRU cache by IP, because
logs repeat the same few clients and the cache makes a lookup a dict hit.

A database that is missing, unreadable or corrupt turns its half of the enrichment off with one
warning line naming the key and the file; the load goes on. A ``geo`` (or ``as``) a log type set
itself (a WAF's own country) is kept whole: mixing its country with the database's city would make
a place that does not exist.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

SIDES = ("source", "destination")
CITY, ASN = "enrich.geoip_city", "enrich.geoip_asn"  # the config keys, as warnings name them
Found = tuple[dict[str, Any] | None, dict[str, Any] | None]  # (geo, as) of one IP


def _name(record: dict[str, Any], key: str) -> str | None:
    names = (record.get(key) or {}).get("names") or {}
    return names.get("en")


def geo_fields(record: dict[str, Any]) -> dict[str, Any] | None:
    """ECS geo.* from a City/Country record (https://www.elastic.co/guide/en/ecs/current/ecs-geo.html)."""
    geo: dict[str, Any] = {}
    location = record.get("location") or {}
    if location.get("latitude") is not None and location.get("longitude") is not None:
        geo["location"] = {"lat": location["latitude"], "lon": location["longitude"]}
    if location.get("time_zone"):
        geo["timezone"] = location["time_zone"]
    country = record.get("country") or {}
    if country.get("iso_code"):
        geo["country_iso_code"] = country["iso_code"]
    if _name(record, "country"):
        geo["country_name"] = _name(record, "country")
    if _name(record, "city"):
        geo["city_name"] = _name(record, "city")
    continent = record.get("continent") or {}
    if continent.get("code"):
        geo["continent_code"] = continent["code"]
    if _name(record, "continent"):
        geo["continent_name"] = _name(record, "continent")
    subdivisions = record.get("subdivisions") or []
    if subdivisions:
        region = subdivisions[0]
        if region.get("iso_code") and country.get("iso_code"):
            geo["region_iso_code"] = f"{country['iso_code']}-{region['iso_code']}"
        if (region.get("names") or {}).get("en"):
            geo["region_name"] = region["names"]["en"]
    postal = (record.get("postal") or {}).get("code")
    if postal:
        geo["postal_code"] = postal
    return geo or None


def as_fields(record: dict[str, Any]) -> dict[str, Any] | None:
    """ECS as.* from an ASN record."""
    fields: dict[str, Any] = {}
    number = record.get("autonomous_system_number")
    if isinstance(number, int):
        fields["number"] = number
    organization = record.get("autonomous_system_organization")
    if organization:
        fields["organization"] = {"name": organization}
    return fields or None


def _open(key: str, path: str | None) -> Any:
    """A maxminddb reader, or None (with one warning) when the file cannot be used."""
    if not path:
        return None
    import maxminddb

    try:
        return maxminddb.open_database(path)
    except FileNotFoundError:
        reason = "no such file"
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:  # unreadable, or not a MaxMind DB
        reason = f"not a readable MaxMind database ({type(exc).__name__}: {exc})"
    log.warning("GeoIP enrichment off for %s: %s: %s", key, path, reason)
    return None


class GeoIpEnricher:
    """Adds geo and AS fields to the source and destination of an event, in place."""

    def __init__(self, city_path: str | None, asn_path: str | None, cache_size: int = 65536) -> None:
        self._paths = {CITY: city_path, ASN: asn_path}
        self._readers = {key: _open(key, path) for key, path in self._paths.items()}
        self._lookup: Callable[[str], Found | None] = lru_cache(maxsize=cache_size)(self._lookup_uncached)

    @property
    def active(self) -> bool:
        return any(reader is not None for reader in self._readers.values())

    def _read(self, key: str, ip: str) -> dict[str, Any] | None:
        """One database lookup; a database found corrupt while reading is turned off, with one warning."""
        import maxminddb

        reader = self._readers[key]
        if reader is None:
            return None
        try:
            record = reader.get(ip)
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
            self._readers[key] = None
            reason = f"corrupt database ({type(exc).__name__}: {exc})"
            log.warning("GeoIP enrichment off for %s: %s: %s", key, self._paths[key], reason)
            return None
        return record if isinstance(record, dict) else None

    def _lookup_uncached(self, ip: str) -> Found | None:
        try:
            if not ipaddress.ip_address(ip).is_global:
                return None
        except ValueError:
            return None
        city = self._read(CITY, ip)
        asn = self._read(ASN, ip)
        found = (geo_fields(city) if city else None, as_fields(asn) if asn else None)
        return found if found != (None, None) else None

    def __call__(self, doc: dict[str, Any]) -> None:
        for side in SIDES:
            part = doc.get(side)
            if not isinstance(part, dict):
                continue
            ip = part.get("ip")
            if not isinstance(ip, str):
                continue
            found = self._lookup(ip)
            if found is None:
                continue
            geo, as_ = found
            if geo and "geo" not in part:  # copies: no dict is shared between events
                part["geo"] = {**geo, "location": dict(geo["location"])} if "location" in geo else dict(geo)
            if as_ and "as" not in part:
                part["as"] = {**as_, "organization": dict(as_["organization"])} if "organization" in as_ else dict(as_)


def from_settings(enrich: dict[str, Any]) -> GeoIpEnricher | None:
    """The enricher the configuration asks for, or None when none is configured or none could be opened
    (so the load's hot path pays one None check per event, nothing more)."""
    if not (enrich.get("geoip_city") or enrich.get("geoip_asn")):
        return None
    enricher = GeoIpEnricher(enrich.get("geoip_city"), enrich.get("geoip_asn"), enrich.get("geoip_cache", 65536))
    return enricher if enricher.active else None

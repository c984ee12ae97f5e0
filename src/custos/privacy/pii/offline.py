"""Keep Presidio's dependencies off the network.

Presidio's e-mail check calls ``tldextract``, whose default extractor fetches the public-suffix
list from the internet on first use (and caches it under the home folder). Here it reads the
snapshot bundled with tldextract instead, with no disk cache.
"""

from __future__ import annotations

from functools import lru_cache

import tldextract
import tldextract.tldextract


@lru_cache(maxsize=1)
def offline_tld_extractor() -> tldextract.TLDExtract:
    """A tldextract extractor that only reads its bundled public-suffix snapshot."""
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def install_offline_tldextract() -> None:
    """Make ``tldextract.extract`` (used by Presidio's own recognizers) offline as well."""
    tldextract.tldextract.TLD_EXTRACTOR = offline_tld_extractor()

"""The typed Python API: the workflows of :class:`~custos.service.app.Custos` grouped by topic,
each a sub-facade of the instance (``custos.profiles``, ``custos.consent``, ``custos.dsr``,
``custos.insight``, ``custos.collect``, ``custos.audit``, ``custos.admin``) whose results are
frozen dataclasses (``to_dict()`` gives the plain dict of a JSON body)."""

from __future__ import annotations

from custos.service.facades.admin import AdminFacade, ModelVersion, QuarantinedRow, StoreStats
from custos.service.facades.audit import AuditEntry, AuditFacade
from custos.service.facades.base import Result
from custos.service.facades.collect import CollectFacade
from custos.service.facades.consent import (
    ConsentFacade,
    ConsentView,
    PurposeState,
    SignalsRecorded,
    VendorDecision,
)
from custos.service.facades.dsr import DsrFacade
from custos.service.facades.insight import InsightFacade, Mood, MoodPoint, SegmentInfo
from custos.service.facades.profiles import (
    Explanation,
    ExportedProfile,
    GoldenAttribute,
    Profile,
    ProfilesFacade,
    RecordLinks,
    ReviewDecision,
    ReviewPage,
    Unmerged,
)

__all__ = [
    "AdminFacade",
    "AuditEntry",
    "AuditFacade",
    "CollectFacade",
    "ConsentFacade",
    "ConsentView",
    "DsrFacade",
    "Explanation",
    "ExportedProfile",
    "GoldenAttribute",
    "InsightFacade",
    "ModelVersion",
    "Mood",
    "MoodPoint",
    "Profile",
    "ProfilesFacade",
    "PurposeState",
    "QuarantinedRow",
    "RecordLinks",
    "Result",
    "ReviewDecision",
    "ReviewPage",
    "SegmentInfo",
    "SignalsRecorded",
    "StoreStats",
    "Unmerged",
    "VendorDecision",
]

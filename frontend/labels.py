"""Display names of the domain's codes, as gettext msgids (translated at render time)."""

from __future__ import annotations

from frontend.i18n import N_

KINDS = {
    "open_meeting": N_("Open meeting"),
    "open_day": N_("Government open day"),
    "public_report": N_("Public report meeting"),
    "chief_dialogue": N_("Citizen dialogue with the chief"),
    "broadcast": N_("Government-citizen live room"),
}
STATUSES = {
    "draft": N_("Draft"),
    "pending_review": N_("Awaiting review"),
    "published": N_("Published"),
    "live": N_("Live now"),
    "ended": N_("Ended"),
    "archived": N_("Archived"),
    "cancelled": N_("Cancelled"),
}
MODES = {
    "in_person": N_("In person"),
    "online": N_("Online"),
    "hybrid": N_("In person and online"),
}
CATEGORIES = {
    "livelihood": N_("Livelihood department"),
    "subdistrict": N_("Sub-district"),
    "other": N_("Other department"),
}
ROLES = {
    "admin": N_("District office (admin)"),
    "editor": N_("Unit editor"),
    "host": N_("Host"),
}

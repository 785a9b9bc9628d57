"""Who may see and change what: the one place that decides visibility.

Rule (DESIGN.md section 1): a rep sees records they own or that are shared with them;
a manager sees their teams' records as well; an admin sees everything. Every view,
selector, export and API goes through this package, one module per area:

| module           | decides                                                           |
|------------------|-------------------------------------------------------------------|
| core             | a user's reach (self, or a manager's teams), assignable owners,   |
|                  | teams; `require_manager`, `require_admin`                         |
| customers        | customers (owned, shared); `access_customer_by_id`                |
| customer_imports | CSV imports (their uploader); `access_customer_import_by_id`      |
| duplicates       | the duplicates queue (managers: pairs of their teams' customers), |
|                  | merging (both customers changeable), undoing a merge              |
| sales            | deals and tasks; `access_sale_by_id`, `access_task_by_id`         |
| documents        | documents (the rule, uploader, public, named users);              |
|                  | `access_document_by_id`                                           |
| campaigns        | templates, segments, campaigns, their messages, the outbox;       |
|                  | `access_campaign_by_id` and the like                              |
| analytics        | the dashboards' scopes (team, rep); `access_dashboard_scope`      |
| forecast         | whose deals a user may forecast; `access_forecast_scope`          |
| scopes           | narrowing a visible queryset to one owner or team (list filters)  |

The core, customers and sales names are re-exported here; the other areas are imported from
their module (`from crm.permissions.documents import access_document_by_id`).

Models are looked up lazily (`apps.get_model`) so that `crm` imports none of the apps that
sit on top of it. A refusal raises `crm.errors.PermissionDenied` (a 403 wherever it is not
caught) or answers 404 for a record out of reach, so its existence is not revealed.
"""

from crm.permissions.core import (
    assignable_user_list,
    assignable_users,
    owned_by,
    require_admin,
    require_manager,
    team_user_ids,
    team_users,
    visible_teams,
)
from crm.permissions.customers import (
    SHARED_IDS_INLINE_LIMIT,
    access_customer_by_id,
    editable_customers,
    shared_customers,
    visible_customers,
)
from crm.permissions.sales import (
    access_sale_by_id,
    access_task_by_id,
    customer_has_deals_beyond_reach,
    editable_sales,
    visible_sales,
    visible_tasks,
)

__all__ = [
    "SHARED_IDS_INLINE_LIMIT",
    "access_customer_by_id",
    "access_sale_by_id",
    "access_task_by_id",
    "assignable_user_list",
    "assignable_users",
    "customer_has_deals_beyond_reach",
    "editable_customers",
    "editable_sales",
    "owned_by",
    "require_admin",
    "require_manager",
    "shared_customers",
    "team_user_ids",
    "team_users",
    "visible_customers",
    "visible_sales",
    "visible_tasks",
    "visible_teams",
]

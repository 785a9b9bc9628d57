"""What the generated data sets look like: a `Profile` of distributions per data set
(`DEMO` for seed_demo and the 100k benchmarks, `BENCH_1M` for the dashboard's 1M set), the
distributions they share, and the words the names, titles and notes are made of.
demo.generators turns a profile, a size and a seed into rows."""

from dataclasses import dataclass, field

Weights = dict[str, int]


@dataclass(frozen=True)
class Profile:
    """The distributions of a data set. Weights are relative; shares are between 0 and 1;
    ages are in days before `now`, drawn uniformly."""

    # Customers
    customer_age_days: float
    lifecycle: Weights
    last_contact_days: float  # last contact up to this long ago...
    no_contact_share: float  # ...or never
    tagged_share: float  # customers with one or two of the given tags
    lead_activity_counts: tuple[int, ...]  # a lead's number of activities: one of these
    # Deals, on random customers
    statuses: Weights
    open_age_days: float  # open deals were created up to this long ago
    closed_within_days: float  # closed deals closed up to this long ago
    currencies: Weights
    no_amount_share: float
    owner_share: float  # deals worked by the customer's owner...
    unassigned_share: float  # ...by nobody; the others by a random rep
    activities_per_deal: int  # from 0 to this many activities a deal
    open_task_share: float  # open deals with a task
    # Customers' email consent (customers.EmailConsent values), recorded as from the form
    email_consent: Weights = field(default_factory=lambda: {"granted": 1})


# seed_demo's data and the benchmarks' 100k set (`seed_demo --customers 100000 --deals 100000`).
DEMO = Profile(
    customer_age_days=900,
    lifecycle={"lead": 4, "prospect": 3, "customer": 3, "churned": 1},
    last_contact_days=200,
    no_contact_share=0.15,
    tagged_share=0.35,
    # A few keen leads, many quiet ones: that spread is what gives hot/warm/cold.
    lead_activity_counts=(0, 0, 1, 2, 3, 5, 8, 13),
    statuses={"NEW": 18, "CONTACTED": 16, "PROPOSAL": 14, "NEGOTIATION": 10, "WON": 24, "LOST": 18},
    open_age_days=540,
    closed_within_days=540,
    currencies={"USD": 1},
    no_amount_share=0.0,
    owner_share=0.0,
    unassigned_share=0.0,
    activities_per_deal=3,
    open_task_share=0.6,
    # Most gave consent on a form; some never said (marketing skips them while
    # MARKETING_REQUIRES_CONSENT is on, so the campaign page shows skips with reasons).
    email_consent={"granted": 8, "unknown": 2},
)

# The 1M data set of bench/scenarios/dashboard_1m.py (bench/README.md describes it): 40 %
# open, the rest closed over two years, three currencies, deals mostly worked by the
# customer's owner; no activities or tasks.
BENCH_1M = Profile(
    customer_age_days=1000,
    lifecycle={"lead": 3, "prospect": 2, "customer": 4, "churned": 1},
    last_contact_days=400,
    no_contact_share=0.10,
    tagged_share=0.0,
    lead_activity_counts=(0,),
    statuses={"NEW": 12, "CONTACTED": 11, "PROPOSAL": 9, "NEGOTIATION": 8, "WON": 35, "LOST": 25},
    open_age_days=200,
    closed_within_days=730,
    currencies={"USD": 90, "EUR": 7, "GBP": 3},
    no_amount_share=0.02,
    owner_share=0.8,
    unassigned_share=0.01,
    activities_per_deal=0,
    open_task_share=0.0,
)

# The same for every profile.
ENGAGEMENT = {"LOW": 3, "MEDIUM": 4, "HIGH": 2, "VIP": 1}
COMPANY_SIZES = [5, 12, 25, 60, 150, 400, 1200, 5000, 20000]
CYCLE_DAYS = (2, 120)  # a closed deal was created this long before it closed
OPEN_EXPECTED_DAYS = (-30, 180)  # an open deal's expected close, from today
CLOSED_EXPECTED_DAYS = (-20, 20)  # a closed deal's expected close, around its close
LEAD_ACTIVITY_DAYS = 90
TASK_DUE_HOURS = (-96, 240)
TASK_DONE_SHARE = 0.2
BATCH = 100_000  # deals (and customers) built and written at a time

FIRST_NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Daniel",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Isla",
    "Jack",
    "Kai",
    "Lena",
    "Milo",
    "Nina",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Xena",
    "Yusuf",
    "Zoe",
    "Aiko",
    "Bruno",
    "Carmen",
    "Dev",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Garcia",
    "Müller",
    "Rossi",
    "Tanaka",
    "Kowalski",
    "Silva",
    "Dubois",
    "Novak",
    "Jensen",
    "Patel",
    "Kim",
    "Nguyen",
    "Cohen",
    "Larsen",
    "Fischer",
    "Moreau",
    "Costa",
    "Haddad",
    "Walsh",
    "Murphy",
    "Schmidt",
    "Ivanova",
]
COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Aperture",
    "Oscorp",
    "Pied",
    "Piper",
    "Massive",
    "Dynamic",
    "Nakatomi",
    "Gringotts",
    "Monarch",
    "Blue",
    "Sun",
]
COMPANY_SUFFIXES = ["Ltd", "Inc", "GmbH", "Group", "Labs", "Systems", "Partners", "Co"]
JOB_TITLES = {
    "decision_maker": ["CEO", "VP Sales", "Head of Operations", "CFO"],
    "influencer": ["Sales Manager", "IT Manager", "Procurement Lead"],
    "user": ["Account Executive", "Analyst", "Office Manager"],
    "": [""],
}
DEAL_PRODUCTS = ["Platform licence", "Onboarding", "Support plan", "Analytics add-on", "Seats"]
AMOUNT_STEPS = [1, 2, 3, 5, 8, 13, 21, 34]  # x 1..9 x 500
LOST_REASONS = ["Price", "Went with a competitor", "No budget"]
ACTIVITY_TEXT = {
    "call": "Discovery call: discussed current tooling and timeline.",
    "email": "Sent follow-up with pricing overview.",
    "meeting": "Demo meeting with the buying committee.",
    "note": "Champion is keen; procurement needs a security review.",
}
TASK_TITLES = ["Follow-up call", "Send proposal", "Book demo", "Check references"]

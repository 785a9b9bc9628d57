"""Email sequences: ordered template steps sent days apart inside a weekday send window,
until a stop condition holds (DESIGN.md "Sequences"). One responsibility a module:

| module    | owns                                                                        |
|-----------|-----------------------------------------------------------------------------|
| window    | the weekday send window: when a step may go                                  |
| builder   | saving a sequence and its steps (each step's hidden campaign), pausing, deleting |
| enrolment | enrolling customers (one, a segment, the workflows' cold leads), stopping    |
| stops     | the stop conditions, judged for the enrolments due at a step's edge          |
| tick      | the scheduler tick: every due step queued as a campaign run in one statement |
| imports   | the CSV import's "enrol the new leads in sequence X" choice                   |
| selectors | the pages' reads: lists, enrolments, per-step funnel                         |

Each step sends through the campaigns pipeline as runs of its own hidden EmailCampaign: the
same exactly-once batches, tracking, unsubscribe link and headers, provider or outbox, and
the same email gate (customers.email_gate, marketing) before each batch.
"""

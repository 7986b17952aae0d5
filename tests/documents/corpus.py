"""A small fixed corpus and question set made for the retrieval tests: eight policy documents of
a made-up company, each several paragraphs, and questions worded differently from the text,
each with the document that answers it."""

from __future__ import annotations

DOCUMENTS: dict[str, str] = {
    "leave.md": """# Annual leave
Every employee receives twenty-five days of paid vacation per calendar year. Unused vacation days
can be carried over until the end of March of the following year.

# Sick leave
When you are ill, tell your manager before nine in the morning. A doctor's note is required from
the fourth consecutive day of absence.

# Parental leave
New parents may take up to sixteen weeks of paid parental leave within the first year after birth
or adoption.""",
    "security.md": """# Passwords
Passwords must be at least fourteen characters long and are never shared, not even with IT staff.
Use the company password manager to generate and store them.

# Two-factor authentication
Two-factor authentication with a hardware key is mandatory for email, the VPN and source control.

# Lost devices
Report a lost or stolen laptop or phone to the security team within one hour so it can be wiped
remotely.""",
    "expenses.md": """# Travel
Book flights and trains through the travel portal. Economy class is the rule for trips under six
hours; business class needs director approval.

# Reimbursement
Submit receipts in the expense tool within thirty days. Reimbursements are paid with the next
monthly salary.

# Meals
Meals while travelling are covered up to forty euros per day; alcohol is never reimbursed.""",
    "product.md": """# Battery
The Aurora headset battery lasts about eighteen hours of playback and charges fully in ninety
minutes over USB-C.

# Warranty
Every headset comes with a two-year warranty covering manufacturing defects but not water damage.

# Pairing
Hold the power button for five seconds until the light blinks blue to pair a new phone over
Bluetooth.""",
    "onboarding.md": """# First day
On your first day, collect your badge and laptop at the front desk at half past eight. Your buddy
will show you around the building.

# Training
All new hires complete the compliance training within their first two weeks.""",
    "facilities.md": """# Parking
The garage under the building has spaces for employees on levels two and three. Bicycle racks are
next to the main entrance.

# Kitchen
Coffee, tea and fruit are free. Please empty the dishwasher when it has finished.

# Meeting rooms
Reserve meeting rooms in the calendar; a booking not claimed within fifteen minutes is released.""",
    "conduct.md": """# Respect
We treat colleagues, customers and partners with respect. Harassment of any kind is not
tolerated.

# Gifts
Gifts from suppliers worth more than fifty euros must be declined or reported to compliance.

# Speaking up
Concerns can be reported anonymously through the ethics hotline.""",
    "retention.md": """# Customer data
Customer records are deleted seven years after the end of the contract, unless the law requires
longer.

# Backups
Backups are encrypted and kept for ninety days in two separate data centres.

# Logs
Application logs containing personal data are kept for thirty days.""",
}

QUESTIONS: list[tuple[str, str]] = [
    ("How many vacation days do I get each year?", "leave.md"),
    ("Do I need a note from the doctor when I am sick?", "leave.md"),
    ("How long can parents stay home after a baby is born?", "leave.md"),
    ("What is the minimum password length?", "security.md"),
    ("My laptop was stolen, what should I do?", "security.md"),
    ("Can I fly business class?", "expenses.md"),
    ("How much can I spend on meals when travelling?", "expenses.md"),
    ("When are my expense reimbursements paid?", "expenses.md"),
    ("How long does the headset battery last?", "product.md"),
    ("Does the warranty cover water damage?", "product.md"),
    ("How do I pair the headset with my phone?", "product.md"),
    ("Where do I pick up my badge on the first day?", "onboarding.md"),
    ("Where can I park my car?", "facilities.md"),
    ("Is coffee free in the kitchen?", "facilities.md"),
    ("May I accept a gift from a supplier?", "conduct.md"),
    ("How do I report a concern anonymously?", "conduct.md"),
    ("How long are backups kept?", "retention.md"),
    ("When is customer data deleted?", "retention.md"),
]

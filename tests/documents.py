"""Documents as users have them (issue 24), generated on the fly for tests and benchmarks:
a 2-page CV as a PDF (fpdf2) and its DOCX twin (python-docx), and a 10-page product
manual PDF in its vendor's voice with one paragraph by its owner.

Nothing is read from disk or the network; each function returns the file's bytes.
Used by tests/test_resources_docs.py, tests/test_e2e_documents.py and
bench/resource_cost.py (``--files``).
"""
from __future__ import annotations

import io

#: The CV's duties paragraph (written twice: over 800 characters, so page 1 is cut
#: into several chunks).
DUTIES = ("Designed and operated batch and streaming pipelines for the logistics division. "
          "Moved the nightly warehouse loads from cron scripts to Airflow with tested DAGs. "
          "Cut the cost of the reporting cluster by a third through partitioning and caching. "
          "Introduced data contracts between the ordering and the billing services. "
          "Mentored two junior engineers and ran the weekly data quality review. "
          "Wrote the runbooks for on-call and led the migration of dashboards to Superset. ")

#: The CV, page by page: a list of paragraphs per page (each a line, the duties one long one).
CV_PAGES = [
    ["Lena Vogel", "Address: Torstrasse 12, 10119 Berlin", "Phone: +49 30 1234567",
     "Experience", "Data Engineer, Acme Logistics GmbH, 2019 - today", DUTIES * 2,
     "Education", "MSc Computer Science, TU Dresden, 2017"],
    ["Languages: German, English, Spanish", "Hobbies: Bouldering, cycling"],
]

#: The manual's owner paragraph, the only first-person text of the manual (page 7).
OWNER_NOTES = ("Owner's notes: I bought this machine in Vienna in 2024. I descale it every two "
               "months and I drink two espressos a day.")
#: 1-based page of the manual that holds ``OWNER_NOTES``.
OWNER_PAGE = 7

#: The manual, page by page: ``(heading, paragraphs)``, vendor's voice and imperatives only.
MANUAL_PAGES = [
    ("Safety instructions", [
        "The Barista X200 is intended for household use only. Read this manual before the "
        "first use and keep it near the machine for later reference.",
        "Never immerse the machine, the power cable or the plug in water. Keep children away "
        "from the steam wand and the hot water outlet while the machine is in operation."]),
    ("Unpacking and installation", [
        "Remove all packaging material and place the machine on a flat, dry and stable "
        "surface at least ten centimetres from the wall.",
        "We recommend keeping the original box: the machine should travel in it whenever it "
        "is sent to our service centre."]),
    ("Water tank and coffee beans", [
        "Fill the water tank with fresh, cold water up to the MAX mark. Filtered water "
        "reduces limescale and improves the taste of the coffee.",
        "Pour whole roasted beans into the bean container. Oily or caramelised beans can "
        "block the grinder and are not covered by the warranty."]),
    ("Brewing an espresso", [
        "Place a cup under the spout and press the single-cup button once. The machine "
        "grinds, tamps and brews in about thirty seconds.",
        "Turn the grind-size dial only while the grinder is running. A finer setting gives "
        "a stronger, slower shot; a coarser one a lighter, faster shot."]),
    ("Frothing milk", [
        "Fill the jug one third with cold milk, immerse the steam wand just below the "
        "surface and turn the steam knob anticlockwise.",
        "Wipe the steam wand with a damp cloth right after each use and purge it for two "
        "seconds, so that no milk dries inside the nozzle."]),
    ("Daily cleaning", [
        "Empty the drip tray and the grounds container every day. Rinse both under warm "
        "water; they are not dishwasher safe.",
        "Once a week remove the brewing unit, rinse it under running water and let it dry "
        "completely before putting it back."]),
    ("Descaling", [
        "We recommend descaling the machine every three months, or sooner when the display "
        "shows the descaling symbol. Use only our descaling tablets; other products may "
        "damage the boiler and void the warranty.",
        OWNER_NOTES]),
    ("Troubleshooting", [
        "E1: the water tank is empty or not inserted correctly. E2: the grounds container "
        "is full. E3: the brewing unit is missing.",
        "If the display shows E4, switch the machine off, wait one minute and switch it on "
        "again. If the error remains, please contact our service centre."]),
    ("Warranty and service", [
        "The warranty covers manufacturing defects for two years from the date of purchase. "
        "Keep the receipt as proof of purchase.",
        "Contact our service by phone or through the form on our website. Our technicians "
        "collect the machine within two working days and we are happy to help."]),
    ("Technical data", [
        "Power: 1450 W. Pump pressure: 15 bar. Water tank: 1.8 litres. Bean container: "
        "250 grams. Weight: 8.2 kilograms.",
        "Dimensions: 24 x 43 x 36 centimetres. Voltage: 220-240 V, 50 Hz. The machine "
        "switches to standby after thirty minutes without use."]),
]


def cv_pdf() -> bytes:
    """Return a 2-page CV as PDF bytes (fpdf2): page 1 holds the name, the address in
    Berlin, a phone number, the job (Data Engineer) with a long list of duties (over 800
    characters, so the page is cut into several chunks) and the education; page 2 the
    languages (German, English, Spanish) and hobbies (bouldering, cycling). No sentence
    says "I"."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for page in CV_PAGES:
        pdf.add_page()
        for line in page:
            if len(line) > 100:  # the duties: wrapped over many lines
                pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
            else:
                pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def cv_docx() -> bytes:
    """Return the CV of :func:`cv_pdf` as DOCX bytes (python-docx): the same lines, one
    plain paragraph each (the duties one long paragraph), with a page break before the
    languages and hobbies."""
    import docx

    d = docx.Document()
    for n, page in enumerate(CV_PAGES):
        if n:
            d.add_page_break()
        for line in page:
            d.add_paragraph(line)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def manual_pdf() -> bytes:
    """Return a 10-page product manual of a coffee machine as PDF bytes (fpdf2), one
    section per page, in the vendor's voice ("we recommend", "contact our service") and
    imperatives; only one paragraph, :data:`OWNER_NOTES` on page :data:`OWNER_PAGE`, is
    about the owner in the first person."""
    from fpdf import FPDF

    pdf = FPDF()
    for n, (heading, paragraphs) in enumerate(MANUAL_PAGES, start=1):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 14)
        pdf.multi_cell(0, 8, f"{n}. {heading}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        for text in paragraphs:
            pdf.ln(4)
            pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())

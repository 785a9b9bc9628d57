"""200 mixed documents (100 KB to 5 MB) uploaded and processed; a real worker's peak memory
while it processes a 25 MB PDF."""

import io
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test.utils import override_settings

from bench import database
from bench.registry import scenario
from crm.models import AuditEvent
from documents import filetypes, services
from documents.models import Document
from documents.processing import document_process

FILES = 200
MIN_BYTES = 100 * 1024
MAX_BYTES = 5 * 1024 * 1024
# The big PDF stays under the default upload limit (DOCUMENT_MAX_BYTES, 25 MiB).
BIG_PDF_BYTES = 25_000_000
KINDS = ("pdf", "docx", "png", "jpeg", "txt", "csv")
EXPECTED_TYPE = {
    "pdf": filetypes.PDF,
    "docx": filetypes.DOCX,
    "png": filetypes.PNG,
    "jpeg": filetypes.JPEG,
    "txt": filetypes.TXT,
    "csv": filetypes.CSV,
}
EXTENSION = {"jpeg": "jpg"}
PAGE = (
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
    b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
)
SEED = 20_240_601
USERNAME = "bench_documents"
CELERY = str(Path(sys.executable).with_name("celery"))
WORKER_START_SECONDS = 60
WORKER_TASK_SECONDS = 300

# fmt: off
WORDS = [
    "proposal", "contract", "invoice", "renewal", "pricing", "discount", "quarterly", "annual",
    "service", "level", "agreement", "customer", "account", "manager", "delivery", "schedule",
    "payment", "terms", "net", "thirty", "days", "license", "support", "maintenance", "onboarding",
    "training", "migration", "integration", "reporting", "analytics", "dashboard", "pipeline",
    "forecast", "territory", "region", "enterprise", "midmarket", "startup", "budget", "approval",
    "signature", "legal", "review", "amendment", "clause", "liability", "warranty", "scope",
    "milestone", "acceptance", "criteria", "invoice", "purchase", "order", "renewal", "notice",
    "termination",
]
# fmt: on


# --- Files, generated untimed and deterministically (one seed) ---------------------------


def _lines(rng: random.Random, count: int, width: int = 90) -> list[str]:
    """Business-sounding lines of about `width` characters, one word in five a number."""
    lines = []
    for _ in range(count):
        words, size = [], 0
        while size < width:
            word = rng.choice(WORDS) if rng.random() < 0.8 else f"{rng.randrange(10**6):06d}"
            words.append(word)
            size += len(word) + 1
        lines.append(" ".join(words))
    return lines


def pdf_bytes(target: int, rng: random.Random, lines_per_page: int = 55) -> bytes:
    """A PDF of about `target` bytes, written by hand: A4 pages of Helvetica text, each page
    its own Flate-compressed content stream (as real text PDFs are), until the size is
    reached. pypdf reads and extracts it like any other."""
    pool = _lines(rng, 3000)
    chunks = [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"]
    offsets: dict[int, int] = {}
    size = len(chunks[0])

    def add(number: int, body: bytes) -> None:
        nonlocal size
        offsets[number] = size
        data = b"%d 0 obj\n%s\nendobj\n" % (number, body)
        chunks.append(data)
        size += len(data)

    add(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pages, number = [], 4
    # Each object costs 20 bytes of xref; stop when the body plus the xref reaches the target.
    while size + 20 * number + 400 + 12 * len(pages) < target:
        text = [b"BT /F1 9 Tf 11 TL 36 806 Td"]
        text += [b"(%s) '" % line.encode() for line in rng.sample(pool, lines_per_page)]
        text.append(b"ET")
        stream = zlib.compress(b"\n".join(text), 6)
        content = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
        add(number + 1, content % (len(stream), stream))
        add(number, PAGE % (number + 1))
        pages.append(number)
        number += 2
    kids = b" ".join(b"%d 0 R" % page for page in pages)
    add(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages)))
    add(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    xref_at = size
    xref = [b"xref\n0 %d\n0000000000 65535 f \n" % number]
    xref += [b"%010d 00000 n \n" % offsets[i] for i in range(1, number)]
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (number, xref_at)
    return b"".join(chunks) + b"".join(xref) + trailer


def docx_bytes(target: int, rng: random.Random) -> bytes:
    """A python-docx document of about `target` bytes: a heading, then paragraphs of two
    lines each. Paragraphs are inserted before the section properties directly, because
    Document.add_paragraph searches the whole body each time (quadratic for 100k)."""
    import docx
    from docx.oxml import OxmlElement

    pool = _lines(rng, 3000)

    def make(paragraphs: int) -> bytes:
        document = docx.Document()
        document.add_heading("Master services agreement", level=1)
        document.add_paragraph("Between the customer and us, for the period below.")
        end = document.element.body.sectPr
        for i in range(paragraphs):
            paragraph = OxmlElement("w:p")
            paragraph.add_r().add_t(f"{pool[i % 3000]} {pool[(i * 7 + 1) % 3000]}")
            end.addprevious(paragraph)
        output = io.BytesIO()
        document.save(output)
        return output.getvalue()

    # About 50 bytes of compressed document per paragraph; correct once from the first try.
    return _sized(make, target, first_guess=max(1, target // 50))


def image_bytes(target: int, rng: random.Random, kind: str) -> bytes:
    """Noise, so that it does not compress to nothing: a PNG takes ~3 bytes per pixel, a
    quality-90 JPEG ~0.9."""
    from PIL import Image

    def make(pixels: int) -> bytes:
        width = max(16, int(math.sqrt(pixels * 4 / 3)))
        height = max(16, pixels // width)
        image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        output = io.BytesIO()
        if kind == "png":
            image.save(output, format="PNG")
        else:
            image.save(output, format="JPEG", quality=90)
        return output.getvalue()

    return _sized(make, target, first_guess=int(target / (3.0 if kind == "png" else 0.9)))


def _sized(make, target: int, *, first_guess: int) -> bytes:
    """make(amount) -> bytes; one correction when the first guess misses by more than 10 %."""
    data = make(first_guess)
    if abs(len(data) - target) > target / 10:
        data = make(max(1, int(first_guess * target / len(data))))
    return data


def txt_bytes(target: int, rng: random.Random) -> bytes:
    pool = _lines(rng, 3000)
    out, size = [], 0
    while size < target:
        paragraph = " ".join(rng.sample(pool, 6)) + ".\n\n"
        out.append(paragraph)
        size += len(paragraph)
    return "".join(out).encode()[:target]


def csv_bytes(target: int, rng: random.Random) -> bytes:
    stages = ["NEW", "CONTACTED", "PROPOSAL", "NEGOTIATION", "WON", "LOST"]
    out = ["id,company,contact,email,amount,currency,stage,created\n"]
    size, row = len(out[0]), 0
    while size < target:
        row += 1
        company = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} {row % 977}"
        line = (
            f"{row},{company},Contact {row},contact{row}@example.com,"
            f"{rng.randrange(100, 500_000)}.{rng.randrange(100):02d},USD,"
            f"{rng.choice(stages)},2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}\n"
        )
        out.append(line)
        size += len(line)
    return "".join(out).encode()


def generate_files(folder: Path) -> list[tuple[Path, str]]:
    """FILES files of the six kinds in turn, sizes log-uniform in [MIN_BYTES, MAX_BYTES]."""
    rng = random.Random(SEED)
    files = []
    for i in range(FILES):
        kind = KINDS[i % len(KINDS)]
        # Aim a little inside the range so the generators' approximations stay in it.
        target = int(math.exp(rng.uniform(math.log(MIN_BYTES * 1.15), math.log(MAX_BYTES * 0.9))))
        file_rng = random.Random(rng.getrandbits(64))
        if kind == "pdf":
            data = pdf_bytes(target, file_rng)
        elif kind == "docx":
            data = docx_bytes(target, file_rng)
        elif kind in ("png", "jpeg"):
            data = image_bytes(target, file_rng, kind)
        elif kind == "txt":
            data = txt_bytes(target, file_rng)
        else:
            data = csv_bytes(target, file_rng)
        if not MIN_BYTES <= len(data) <= MAX_BYTES:
            raise RuntimeError(f"Generated {kind} of {len(data)} bytes, outside the range.")
        path = folder / f"{i:03d}-{kind}.{EXTENSION.get(kind, kind)}"
        path.write_bytes(data)
        files.append((path, kind))
    return files


# --- Upload, processing, and a real worker --------------------------------------------------


def _uploaded(path: Path):
    """What Django's upload handlers give the view: small files in memory, big ones (over
    FILE_UPLOAD_MAX_MEMORY_SIZE) in a temporary file. The browser's claimed type is
    deliberately generic: the service decides from the content."""
    data = path.read_bytes()
    if len(data) <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
        return SimpleUploadedFile(path.name, data, content_type="application/octet-stream")
    upload = TemporaryUploadedFile(path.name, "application/octet-stream", len(data), None)
    upload.write(data)
    upload.flush()
    upload.seek(0)
    return upload


def _bench_user():
    user, _ = get_user_model().objects.get_or_create(
        username=USERNAME, defaults={"first_name": "Bench", "last_name": "Documents"}
    )
    return user


def _cleanup(user) -> None:
    """Earlier runs' documents (their files lived in a deleted temp dir) and audit rows."""
    ids = [str(pk) for pk in Document.objects.filter(uploaded_by=user).values_list("pk", flat=True)]
    AuditEvent.objects.filter(
        content_type=ContentType.objects.get_for_model(Document), object_id__in=ids
    ).delete()
    Document.objects.filter(uploaded_by=user).delete()  # accesses and versions cascade


def _proc_status_kb(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident since start) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


def worker_peak(document_id: int, media_root: Path, log_path: Path) -> dict:
    """Start a real `celery worker --pool=solo` (the task runs in the worker's own process)
    on a queue of its own, against the bench database and Redis, with DEBUG off; send it
    process_document for the document; when the document is no longer pending, read the
    worker's VmHWM (Linux's peak resident set size since the process started: the honest
    high-water mark, Django and Celery included)."""
    from crm.celery import app
    from documents.tasks import process_document

    queue = f"bench-docs-{uuid.uuid4().hex[:8]}"
    name = f"{queue}@localhost"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "MEDIA_ROOT": str(media_root),
        "LOG_LEVEL": "WARNING",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [CELERY, "-A", "crm", "worker", "--pool=solo", "-Q", queue, "-n", name,
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=WARNING"],
            env=env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while not app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"The worker did not start: {_tail(log_path)}")
        before = _proc_status_kb(process.pid)
        started = time.perf_counter()
        process_document.apply_async(args=[document_id], queue=queue)
        deadline = time.monotonic() + WORKER_TASK_SECONDS
        while (
            Document.objects.filter(pk=document_id).values_list("processing_status", flat=True)[0]
            == Document.Processing.PENDING
        ):
            if process.poll() is not None:
                raise RuntimeError(
                    f"The worker died (exit {process.returncode}) while processing: "
                    f"{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("The worker did not finish the document in time.")
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        after = _proc_status_kb(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return {
        "peak_mb": round(after["VmHWM"] / 1024, 1),
        "baseline_mb": round(before["VmHWM"] / 1024, 1),
        "seconds": round(seconds, 3),
    }


def _check(documents: list[Document], kinds: list[str]) -> Counter:
    by_type = Counter()
    for document, kind in zip(documents, kinds, strict=True):
        document.refresh_from_db()
        where = f"{document.original_name} (#{document.pk})"
        if document.processing_status != Document.Processing.DONE:
            error = document.processing_error
            raise RuntimeError(f"{where} is {document.processing_status}: {error}")
        if document.mime_type != EXPECTED_TYPE[kind]:
            raise RuntimeError(f"{where} was detected as {document.mime_type}.")
        if kind in ("png", "jpeg"):
            if not document.preview_image:
                raise RuntimeError(f"{where} has no preview image.")
        elif not document.extracted_text:
            raise RuntimeError(f"{where} has no extracted text.")
        if kind == "pdf" and not document.page_count:
            raise RuntimeError(f"{where} has no page count.")
        by_type[kind] += 1
    return by_type


@scenario(
    "document_ingest",
    targets={"docs_per_second_min": 4, "peak_mb_max": 300},
    order=50,
)
def document_ingest() -> dict:
    """200 mixed files uploaded and processed in-process; a worker's peak MB on a 25 MB PDF."""
    database.ensure_database()
    user = _bench_user()
    _cleanup(user)
    temp = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    try:
        source, media = temp / "files", temp / "media"
        source.mkdir()
        media.mkdir()
        print("  generating 200 files and a 25 MB PDF (untimed)…", flush=True)
        generated = time.perf_counter()
        files = generate_files(source)
        big = source / "big.pdf"
        big.write_bytes(pdf_bytes(BIG_PDF_BYTES, random.Random(SEED + 1)))
        print(f"  generated in {time.perf_counter() - generated:.1f} s", flush=True)

        with (
            override_settings(MEDIA_ROOT=str(media)),
            mock.patch("documents.tasks.process_document.delay") as queued,
        ):
            documents, upload_seconds, process_seconds = [], 0.0, 0.0
            by_kind_seconds = Counter()
            for path, kind in files:
                upload = _uploaded(path)  # untimed: the request's upload handler's work
                started = time.perf_counter()
                document = services.document_upload(actor=user, upload=upload, ip="127.0.0.1")
                uploaded = time.perf_counter()
                # As the queued task would, right after the upload's commit, in this process.
                document_process(document_id=document.pk)
                processed = time.perf_counter()
                upload.close()
                upload_seconds += uploaded - started
                process_seconds += processed - uploaded
                by_kind_seconds[kind] += processed - uploaded
                documents.append(document)
            queued_ids = [call.args[0] for call in queued.call_args_list]
            if queued_ids != [document.pk for document in documents]:
                raise RuntimeError("The uploads did not each queue their processing once.")
            by_type = _check(documents, [kind for _, kind in files])

            big_upload = _uploaded(big)
            big_document = services.document_upload(actor=user, upload=big_upload, ip="127.0.0.1")
            big_upload.close()
        print("  a real worker processes the 25 MB PDF…", flush=True)
        worker = worker_peak(big_document.pk, media, temp / "worker.log")
        big_document.refresh_from_db()
        if big_document.processing_status != Document.Processing.DONE:
            raise RuntimeError(f"The 25 MB PDF was not processed: {big_document.processing_error}")
        seconds = upload_seconds + process_seconds
        return {
            "n": len(documents),
            "seconds": round(seconds, 3),
            "docs_per_second": round(len(documents) / seconds, 2),
            "upload_seconds": round(upload_seconds, 3),
            "process_seconds": round(process_seconds, 3),
            "mb_total": round(sum(path.stat().st_size for path, _ in files) / 1_048_576, 1),
            "by_type": dict(by_type),
            "process_seconds_by_type": {k: round(v, 2) for k, v in by_kind_seconds.items()},
            "peak_mb": worker["peak_mb"],
            "worker_baseline_mb": worker["baseline_mb"],
            "big_pdf_mb": round(big.stat().st_size / 1_048_576, 1),
            "big_pdf_pages": big_document.page_count,
            "big_pdf_seconds": worker["seconds"],
        }
    finally:
        _cleanup(user)
        shutil.rmtree(temp, ignore_errors=True)

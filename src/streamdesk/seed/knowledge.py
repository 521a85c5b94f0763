"""Knowledge articles: the retail help centre, the τ²-bench retail policy, the τ²-bench banking corpus, any BEIR corpus.

The retail desk (tenant `default`) searches the help centre, public articles a customer may be shown,
and the agent-facing retail policy, `internal`: employees read it, a customer never sees it cited.
Other corpora live in their own tenant, so the retail desk's search never returns them: the banking
corpus goes to tenant `banking`, where its documents get a deterministic access level from a hash of
their id: about 10% `restricted` (group `fraud` or `billing`, by topic), about 20% `internal` (including
every "Internal:" title), the rest `public`, so permission-aware retrieval has something to filter.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from streamdesk.seed.config import BUNDLED_DIR, TAU2_COMMIT, TAU2_REPO
from streamdesk.seed.exceptions import SeedError
from streamdesk.seed.wire import SEED_EPOCH_MS, AccessLevel, KbArticle, iso_from_ms

POLICY_FILE = Path("taubench") / "tau2_retail_policy.md"
BANKING_DIR = Path("retrieval") / "tau2_banking_knowledge"
BUNDLED_POLICY = BUNDLED_DIR / "tau2_retail_policy.md"
BUNDLED_BANKING = BUNDLED_DIR / "tau2_banking_knowledge_sample.jsonl"
HELP_CENTRE = BUNDLED_DIR / "retail_help_centre.md"
BANKING_TENANT = "banking"
POLICY_URL = f"https://github.com/{TAU2_REPO}/blob/{TAU2_COMMIT}/data/tau2/domains/retail/policy.md"
SEED_UPDATED_AT = iso_from_ms(SEED_EPOCH_MS)
RESTRICTED_PERCENT = 10
INTERNAL_PERCENT = 15  # plus the documents whose title starts with "Internal:", about 20% in all
_FRAUD = re.compile(r"fraud|dispute|unauthori[sz]ed|stolen|scam|suspicious", re.IGNORECASE)

AccessRule = Callable[[dict[str, Any]], tuple[AccessLevel, list[str]]]


def slugify(text: str) -> str:
    """Lower-case words joined by hyphens, as GitHub anchors them."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def policy_path(*, shared_data: Path | None) -> Path:
    """The retail policy under `shared_data` when it is there, else the bundled copy."""
    if shared_data is not None and (shared_data / POLICY_FILE).is_file():
        return shared_data / POLICY_FILE
    return BUNDLED_POLICY


def banking_corpus_path(*, shared_data: Path | None) -> Path:
    """The full banking corpus under `shared_data` when it is there, else the bundled sample."""
    if shared_data is not None and (shared_data / BANKING_DIR / "corpus.jsonl").is_file():
        return shared_data / BANKING_DIR / "corpus.jsonl"
    return BUNDLED_BANKING


def markdown_sections(path: Path) -> list[tuple[str, str]]:
    """(title, text) of each `##` section of a Markdown file; the text before them is one more, titled by `#`."""
    try:
        markdown = path.read_text()
    except FileNotFoundError:
        raise SeedError(f"{path} not found; pass shared_data pointing at shared/data, or restore the file") from None
    heading = re.search(r"^# (.+)$", markdown, re.MULTILINE)
    sections = re.split(r"^## ", markdown, flags=re.MULTILINE)
    overview = re.sub(r"^# .+$", "", sections[0], count=1, flags=re.MULTILINE).strip()
    parts = [(heading.group(1).strip() if heading else path.stem, overview)] if overview else []
    for section in sections[1:]:
        title, _, body = section.partition("\n")
        parts.append((title.strip(), body.strip()))
    return parts


def policy_articles(*, path: Path, updated_at: str = SEED_UPDATED_AT) -> list[KbArticle]:
    """One `internal` article per `##` section of the agent-facing policy; the text before them is the overview."""
    return [
        {
            "id": f"tau2-retail-policy-{slugify(title)}",
            "title": title,
            "text": text,
            "url": f"{POLICY_URL}#{slugify(title)}",
            "access": "internal",
            "groups": [],
            "updated_at": updated_at,
        }
        for title, text in markdown_sections(path)
    ]


def help_articles(*, path: Path = HELP_CENTRE, updated_at: str = SEED_UPDATED_AT) -> list[KbArticle]:
    """One `public` article per `##` section of the retail help centre (what a customer may be shown)."""
    return [
        {
            "id": f"retail-help-{slugify(title)}",
            "title": title,
            "text": text,
            "access": "public",
            "groups": [],
            "updated_at": updated_at,
        }
        for title, text in markdown_sections(path)
    ]


def bucket(doc_id: str) -> int:
    """A stable number in [0, 100) for a document id."""
    return int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:4], "big") % 100


def banking_access(doc: dict[str, Any]) -> tuple[AccessLevel, list[str]]:
    """The access level and groups of a banking document, from its id's hash and its title and text."""
    title = str(doc.get("title", ""))
    share = bucket(str(doc["_id"]))
    if share < RESTRICTED_PERCENT:
        return "restricted", ["fraud" if _FRAUD.search(f"{title}\n{doc.get('text', '')}") else "billing"]
    if share < RESTRICTED_PERCENT + INTERNAL_PERCENT or title.startswith("Internal:"):
        return "internal", []
    return "public", []


def public_access(doc: dict[str, Any]) -> tuple[AccessLevel, list[str]]:
    """Everyone may read every document."""
    return "public", []


def read_beir_corpus(path: Path) -> Iterator[dict[str, Any]]:
    """The documents of a BEIR `corpus.jsonl` (`_id`, `title`, `text`), in file order."""
    try:
        lines = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise SeedError(f"corpus {path} not found; point at a BEIR folder holding corpus.jsonl") from None
    with lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SeedError(f"{path}:{number} is not valid JSON at char {exc.pos}: {exc.msg}") from exc
            if not isinstance(doc, dict) or "_id" not in doc or "text" not in doc:
                raise SeedError(f"{path}:{number} lacks `_id` or `text`; BEIR corpus lines need both")
            yield doc


def beir_articles(
    *,
    corpus_dir: Path,
    access: AccessRule = public_access,
    id_prefix: str = "",
    limit: int | None = None,
    updated_at: str = SEED_UPDATED_AT,
    tenant: str | None = None,
) -> Iterator[KbArticle]:
    """`kb_article` inputs for a BEIR-layout folder (`corpus.jsonl`); blank documents are skipped."""
    path = corpus_dir / "corpus.jsonl" if corpus_dir.is_dir() else corpus_dir
    yield from corpus_articles(
        read_beir_corpus(path), access=access, id_prefix=id_prefix, limit=limit, updated_at=updated_at, tenant=tenant
    )


def corpus_articles(
    docs: Iterable[dict[str, Any]],
    *,
    access: AccessRule = public_access,
    id_prefix: str = "",
    limit: int | None = None,
    updated_at: str = SEED_UPDATED_AT,
    tenant: str | None = None,
) -> Iterator[KbArticle]:
    """`kb_article` inputs for BEIR documents; `id` is `id_prefix + _id` so qrels still resolve.

    `tenant` files them under that tenant (the `default` tenant, the retail desk's, when None).
    """
    emitted = 0
    for doc in docs:
        if limit is not None and emitted >= limit:
            return
        text = str(doc.get("text") or "").strip()
        if not text:
            continue
        level, groups = access(doc)
        article: KbArticle = {
            "id": f"{id_prefix}{doc['_id']}",
            "title": str(doc.get("title") or "").strip(),
            "text": text,
            "access": level,
            "groups": groups,
            "updated_at": updated_at,
        }
        if doc.get("url"):
            article["url"] = str(doc["url"])
        if tenant is not None:
            article["tenant"] = tenant
        emitted += 1
        yield article


def banking_articles(*, path: Path, limit: int | None = None) -> Iterator[KbArticle]:
    """The τ²-bench banking knowledge corpus in tenant `banking`, with access levels from `banking_access`."""
    yield from corpus_articles(read_beir_corpus(path), access=banking_access, limit=limit, tenant=BANKING_TENANT)


def corpus_sample(docs: Iterable[dict[str, Any]], *, every: int) -> list[dict[str, Any]]:
    """Every `every`-th document, starting with the first (how the bundled banking sample was cut)."""
    return [doc for index, doc in enumerate(docs) if index % every == 0]

"""Deterministic Blogger dataset: records, generator, mutations and the truth the API would list.

Records are kept as compact slotted objects and rendered to API dicts on demand; post and comment
bodies are regenerated from a per-record seed until a mutation sets them, which keeps a
200,000-record dataset small in memory.
"""

from __future__ import annotations

import base64
import random
import re
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

# selfLinks point where Google's would; clients are not expected to follow them.
API_ROOT = "https://www.googleapis.com/blogger/v3"

POST_STATUSES = ("LIVE", "DRAFT", "SCHEDULED", "SOFT_TRASHED")
PAGE_STATUSES = ("LIVE", "DRAFT", "SOFT_TRASHED")
COMMENT_STATUSES = ("LIVE", "EMPTIED", "PENDING", "SPAM")
STREAMS = ("users", "blogs", "posts", "pages", "comments")
# Fields the mutation helpers accept, by the API's names.
_POST_FIELDS = frozenset(
    {"title", "content", "labels", "titleLink", "images", "status", "published", "updated"}
)
_PAGE_FIELDS = frozenset({"title", "content", "status", "published", "updated"})

Timestamp = str | datetime | int


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=timezone.utc).timestamp()) * 1000


# Generated history is anchored to fixed instants so a dataset never depends on the day it is built.
_END_MS = _ms(2025, 6, 30)
_SPAN_MS = 6 * 365 * 86_400_000
_FUTURE_MS = _ms(2031, 1, 1)  # scheduled posts stay in the future for years
_DAY_MS = 86_400_000

# Instants on both sides of DST transitions, whole minutes, used as the publish times of a few
# posts so that offsets change within one blog's listing.
_DST_EDGES = {
    "America/Los_Angeles": (
        _ms(2024, 3, 10, 9, 59),  # 01:59 -08:00
        _ms(2024, 3, 10, 10, 1),  # 03:01 -07:00
        _ms(2024, 11, 3, 8, 30),  # 01:30 -07:00
        _ms(2024, 11, 3, 9, 30),  # 01:30 -08:00 (the repeated hour)
    ),
    "Europe/Berlin": (
        _ms(2024, 3, 31, 0, 59),  # 01:59 +01:00
        _ms(2024, 3, 31, 1, 1),  # 03:01 +02:00
        _ms(2024, 10, 27, 0, 30),  # 02:30 +02:00
        _ms(2024, 10, 27, 1, 30),  # 02:30 +01:00
    ),
}

_LOCALES = {
    "America/Los_Angeles": ("en", "", ""),
    "Europe/Berlin": ("de", "DE", ""),
    "Asia/Kolkata": ("en", "IN", ""),
}

_FLAG_EMOJI, _FLAG_LINE_SEP, _FLAG_SCRIPT = 1, 2, 4


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _words(
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua garden recipe travel morning coffee river mountain notes "
    "weekend project sourdough bicycle harbour lantern meadow winter autumn journal sketch"
)
_TITLE_WORDS = _words(
    "Notes on Sourdough Trip Harbour Winter Garden Mountain Coffee Weekend Project Lantern "
    "River Autumn Journal Sketches Bicycle Market Recipes Morning Light Letters"
)
_TITLE_SPICE = (" & more", " \U0001f680", ' "quoted"', " — part 2", " (über café)", "")
_LABELS = ("travel", "recipes", "C++", "Über", "news", "photography", "how-to", "family", "2024")
_FIRST = _words("Ada Grace Linus Marta Chidi Priya Kenji Olga Rui Sven Amara Zoe Ivan Mei Tomás")
_LAST = _words("Lovelace Hopper Okafor Sharma Tanaka Novak Silva Berg Chen Müller Haddad")
_PLACES = (
    ("Berlin, Germany", 52.520008, 13.404954),
    ("Mumbai, Maharashtra, India", 19.07609, 72.877426),
    ("Santa Cruz, CA, USA", 36.974117, -122.030792),
)
_BLOG_NAMES = (
    "Kitchen Notes", "Harbour Log", "Trail Journal", "Lantern Letters",
    "Weekend Projects", "Morning Light", "Market Days", "River Sketches",
)  # fmt: skip
_ANON_AVATAR = "//www.blogger.com/img/blogger_logo_round_35.png"


@dataclass(frozen=True)
class BlogSpec:
    """Shape of one generated blog. `comments` are LIVE comments spread (skewed) over live posts."""

    posts: int = 0
    pages: int = 0
    comments: int = 0
    public: bool = True
    owned: bool = True
    drafts: int = 0
    scheduled: int = 0
    trashed: int = 0
    pending_comments: int = 0
    spam_comments: int = 0
    draft_pages: int = 0
    trashed_pages: int = 0
    name: str | None = None
    timezone: str = "America/Los_Angeles"


@dataclass(slots=True, eq=False)
class _Post:
    id: str
    key: int  # int(id): the tie-breaker of every ordering
    status: str
    published: int  # epoch milliseconds
    updated: int
    title: str
    slug: str
    seed: int  # regenerates the body until `content` is set
    flags: int = 0
    author: int = 0
    labels: tuple[str, ...] | None = None
    title_link: str | None = None
    images: tuple[str, ...] | None = None
    location: tuple[str, float, float, str] | None = None
    content: str | None = None
    trashed: int | None = None
    live_comments: int = 0


@dataclass(slots=True, eq=False)
class _Page:
    id: str
    key: int
    status: str
    published: int
    updated: int
    title: str
    slug: str
    seed: int
    author: int = 0
    content: str | None = None
    trashed: int | None = None


@dataclass(slots=True, eq=False)
class _Comment:
    id: str
    key: int
    post_id: str
    status: str
    published: int
    updated: int
    seed: int
    author: int
    in_reply_to: str | None = None
    content: str | None = None


@dataclass(eq=False)
class _Blog:
    id: str
    name: str
    description: str
    slug: str
    tz: ZoneInfo
    locale: tuple[str, str, str]
    public: bool
    owned: bool
    published: int
    updated: int
    posts: dict[str, _Post] = field(default_factory=dict)
    pages: dict[str, _Page] = field(default_factory=dict)
    comments: dict[str, _Comment] = field(default_factory=dict)
    comments_by_post: dict[str, list[_Comment]] = field(default_factory=dict)
    slugs: set[str] = field(default_factory=set)
    version: int = 0  # bumped by every mutation; part of every cached ordering's key
    totals: tuple[int, int, int] = (-1, 0, 0)  # (version, live posts, live pages)

    @property
    def url(self) -> str:
        return f"https://{self.slug}.blogspot.com/"


@dataclass(frozen=True)
class BlogAccess:
    public: bool
    owned: bool


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?"
)


def parse_timestamp(value: Timestamp) -> int:
    """Epoch milliseconds of an RFC 3339 string (naive means UTC), an aware datetime or an int."""
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    m = _RFC3339.fullmatch(value.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    year, month, day, hour, minute, second, frac, off = m.groups()
    tz = timezone.utc
    if off and off not in "Zz":
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    dt = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        tzinfo=tz,
    )
    millis = int((frac or "0")[:3].ljust(3, "0"))
    return int(dt.timestamp()) * 1000 + millis


def _render_ts(ms: int, tz: ZoneInfo, with_ms: bool) -> str:
    dt = datetime.fromtimestamp(ms // 1000, tz)
    if with_ms:
        return dt.replace(microsecond=ms % 1000 * 1000).isoformat(timespec="milliseconds")
    return dt.isoformat(timespec="seconds")


def _etag(updated_ms: int, tz: ZoneInfo) -> str:
    # Same shape as Google's post etags: base64 of "timestamp: ...\noffset: ...\n", quoted.
    offset = datetime.fromtimestamp(updated_ms // 1000, tz).utcoffset()
    raw = f"timestamp: {updated_ms}\noffset: {int(offset.total_seconds()) * 1000}\n"  # type: ignore[union-attr]
    return '"' + base64.b64encode(raw.encode()).decode().rstrip("=") + '"'


def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:40].rstrip("-") or "post"


def _sentences(count: int, seed: int) -> tuple[str, ...]:
    rng = random.Random(seed)
    return tuple(
        " ".join(rng.choices(_WORDS, k=rng.randint(5, 16))).capitalize() + "." for _ in range(count)
    )


# Bodies are assembled from a fixed pool by bits of the record's seed: cheap enough to redo on
# every render, so they need not be stored.
_SENTENCES = _sentences(256, 0)


def _post_body(seed: int, flags: int) -> str:
    paragraphs = []
    for n in range(1 + seed % 3):
        bits = seed >> (8 + 16 * n)
        picked = (_SENTENCES[(bits >> shift) & 255] for shift in (0, 8, 4))
        paragraphs.append(f"<p>{' '.join(picked)}</p>")
    if flags & _FLAG_EMOJI:
        paragraphs.append("<p>Party time \U0001f389 at the café ☕ — naïve 日本語 test.</p>")
    if flags & _FLAG_LINE_SEP:
        paragraphs.append("<p>first line\u2028second line after a U+2028 separator</p>")
    if flags & _FLAG_SCRIPT:
        paragraphs.append('<script>document.write("</p>\\n<p>");</script>')
    return "\n".join(paragraphs)


def _comment_body(seed: int) -> str:
    text = _SENTENCES[seed & 255]
    if seed % 3 == 0:
        text += " " + _SENTENCES[(seed >> 8) & 255]
    if seed % 29 == 0:
        text += " Love it \U0001f60d"
    elif seed % 31 == 0:
        text += " <b>Tom &amp; Jerry</b> agree"
    return text


def _distribute(total: int, slots: int, rng: random.Random) -> list[int]:
    """Split `total` over `slots` Zipf-like: ~60% of slots get nothing, a few get very many."""
    counts = [0] * slots
    if total <= 0 or slots == 0:
        return counts
    chosen = rng.sample(range(slots), min(total, max(1, round(slots * 0.4))))
    weights = [1.0 / (rank + 1) ** 1.07 for rank in range(len(chosen))]
    spare = total - len(chosen)
    scale = spare / sum(weights)
    shares = [int(w * scale) for w in weights]
    for i in range(spare - sum(shares)):  # hand the rounding remainder to the heaviest slots
        shares[i % len(shares)] += 1
    for slot, share in zip(chosen, shares, strict=True):
        counts[slot] = 1 + share
    return counts


class _View:
    """Records of one listing in API order (newest first); cursors are (sort_ms, key) pairs."""

    __slots__ = ("attr", "items")

    def __init__(self, items: list[Any], attr: str) -> None:
        self.items = items
        self.attr = attr

    def start_after(self, cursor: tuple[int, int] | None) -> int:
        if cursor is None:
            return 0
        attr = self.attr
        return bisect_right(
            self.items, (-cursor[0], -cursor[1]), key=lambda r: (-getattr(r, attr), -r.key)
        )

    def cursor_of(self, record: Any) -> tuple[int, int]:
        return getattr(record, self.attr), record.key


class Dataset:
    """A user, their blogs and everything in them; thread-safe through `lock`.

    Set `clock` (a callable returning an aware datetime, or a fixed datetime) to control the
    `now` that mutations stamp; by default it is the real current time.
    """

    _CACHE_SIZE = 32

    def __init__(self, seed: int, name: str = "custom") -> None:
        self.name = name
        self.seed = seed
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] | datetime | None = None
        self._rng = random.Random(f"{seed}:mutations")  # ids of records added later
        self._ids: set[str] = set()
        self._blogs: dict[str, _Blog] = {}
        self._views: OrderedDict[tuple[Any, ...], _View] = OrderedDict()
        self._authors: list[dict[str, Any]] = []
        self._commenters: list[dict[str, Any]] = []
        self._user: dict[str, Any] = {}

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def generate(
        cls, blog_specs: Sequence[BlogSpec], seed: int = 1, name: str = "custom"
    ) -> Dataset:
        ds = cls(seed, name)
        rng = random.Random(f"{seed}:people")
        ds._make_people(rng)
        for index, spec in enumerate(blog_specs):
            ds._make_blog(index, spec, random.Random(f"{seed}:blog:{index}"))
        return ds

    @classmethod
    def named(cls, name: str) -> Dataset:
        """One of "tiny", "default", "bench2", "agency", "big"."""
        if name == "tiny":
            specs = [
                BlogSpec(
                    posts=25,
                    pages=3,
                    comments=40,
                    drafts=2,
                    scheduled=1,
                    trashed=1,
                    pending_comments=2,
                    spam_comments=1,
                    draft_pages=1,
                    name="Tiny Test Kitchen",
                ),
                BlogSpec(posts=3, pages=1, comments=2, name="Chai & Code", timezone="Asia/Kolkata"),
            ]
            return cls.generate(specs, seed=7, name=name)
        if name == "default":
            specs = [
                BlogSpec(
                    posts=1200,
                    pages=4,
                    comments=3000,
                    drafts=3,
                    scheduled=2,
                    trashed=2,
                    pending_comments=5,
                    spam_comments=3,
                    draft_pages=1,
                    trashed_pages=1,
                ),
                BlogSpec(posts=3, pages=1, comments=2, timezone="Asia/Kolkata"),
                BlogSpec(posts=0),
            ]
            return cls.generate(specs, seed=1, name=name)
        if name == "bench2":
            specs = [
                BlogSpec(posts=5100, pages=40, comments=13_650),
                BlogSpec(posts=100, pages=5, comments=457, timezone="Europe/Berlin"),
            ]
            return cls.generate(specs, seed=2, name=name)
        if name == "agency":
            rng = random.Random("agency")
            zones = {3: "Europe/Berlin", 5: "Asia/Kolkata", 10: "Europe/Berlin", 12: "Asia/Kolkata"}
            specs = []
            for i in range(20):
                posts = rng.randint(150, 400)
                specs.append(
                    BlogSpec(
                        posts=posts,
                        pages=rng.randint(1, 4),
                        comments=2 * posts,
                        drafts=rng.randint(0, 3),
                        pending_comments=rng.randint(0, 2),
                        public=i not in (6, 13),
                        timezone=zones.get(i, "America/Los_Angeles"),
                    )
                )
            return cls.generate(specs, seed=3, name=name)
        if name == "big":
            return cls.generate(
                [BlogSpec(posts=49_990, pages=10, comments=150_000)], seed=4, name=name
            )
        raise ValueError(f"unknown dataset {name!r}; use tiny, default, bench2, agency or big")

    def _new_id(self, rng: random.Random) -> str:
        while True:
            value = str(rng.randrange(10**17, 9 * 10**18))  # 18-19 digits, fits a signed int64
            if value not in self._ids:
                self._ids.add(value)
                return value

    def _person(self, rng: random.Random, display_name: str) -> dict[str, Any]:
        pid = self._new_id(rng)
        image = (
            _ANON_AVATAR
            if rng.random() < 0.5
            else f"//blogger.googleusercontent.com/img/b/R29vZ2xl/{pid[-8:]}/s35/avatar.jpg"
        )
        return {
            "id": pid,
            "displayName": display_name,
            "url": f"https://www.blogger.com/profile/{pid}",
            "image": {"url": image},
        }

    def _make_people(self, rng: random.Random) -> None:
        names = [f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" for _ in range(4)]
        self._authors = [self._person(rng, n) for n in names]
        commenters = [f"{f} {last}" for f in _FIRST for last in _LAST[:8]]
        self._commenters = [self._person(rng, n) for n in commenters] + [
            self._person(rng, "Anonymous")
        ]
        owner = self._authors[0]
        uid = owner["id"]
        self._user = {
            "kind": "blogger#user",
            "id": uid,
            "created": _render_ts(
                _ms(2009, 4, 2, 17, 5) + 41_000, ZoneInfo("America/Los_Angeles"), False
            ),
            "url": owner["url"],
            "selfLink": f"{API_ROOT}/users/{uid}",
            "blogs": {"selfLink": f"{API_ROOT}/users/{uid}/blogs"},
            "displayName": owner["displayName"],
            "about": "Writes about food, trains and \U0001f30d travel.",
            "locale": {"language": "en", "country": "", "variant": ""},
        }

    def _unique_slug(self, blog: _Blog, title: str) -> str:
        base = slug = _slugify(title)
        n = 1
        while slug in blog.slugs:
            n += 1
            slug = f"{base}_{n}"
        blog.slugs.add(slug)
        return slug

    def _make_blog(self, index: int, spec: BlogSpec, rng: random.Random) -> None:
        name = spec.name or f"{_BLOG_NAMES[index % len(_BLOG_NAMES)]} {index + 1}"
        slug = base = _slugify(name)
        taken = {b.slug for b in self._blogs.values()}
        n = 1
        while slug in taken:
            n += 1
            slug = f"{base}{n}"
        blog = _Blog(
            id=self._new_id(rng),
            name=name,
            slug=slug,
            description=f"{name}: notes, pictures & the occasional <rant>.",
            tz=ZoneInfo(spec.timezone),
            locale=_LOCALES.get(spec.timezone, ("en", "", "")),
            public=spec.public,
            owned=spec.owned,
            published=0,
            updated=0,
        )
        self._blogs[blog.id] = blog
        start_min = (_END_MS - _SPAN_MS) // 60_000
        end_min = _END_MS // 60_000

        published = sorted(rng.randrange(start_min, end_min) * 60_000 for _ in range(spec.posts))
        edges = _DST_EDGES.get(spec.timezone, _DST_EDGES["America/Los_Angeles"])
        if spec.posts >= 8:
            published[: len(edges)] = edges
        live: list[_Post] = []
        for pub in published:
            updated = pub
            if rng.random() < 0.4 and _END_MS - pub > 120_000:
                updated = pub + rng.randrange(60_000, min(2 * 365 * _DAY_MS, _END_MS - pub))
            live.append(self._new_post(blog, rng, "LIVE", pub, updated))
        if index == 0 and len(live) >= 6:  # the first blog surely has every rare shape
            for post, flag in zip(live, (_FLAG_EMOJI, _FLAG_LINE_SEP, _FLAG_SCRIPT), strict=False):
                post.flags = flag
            live[3].title_link = f"https://example.org/related/{live[3].id[-6:]}"
            live[4].location = (*_PLACES[0], "0.3,0.5")
            live[5].images = (
                f"https://blogger.googleusercontent.com/img/b/{live[5].id}/s1600/a.jpg",
            )
        for _ in range(spec.drafts):
            pub = _END_MS - rng.randrange(1, 400) * _DAY_MS
            self._new_post(blog, rng, "DRAFT", pub, pub + rng.randrange(_DAY_MS))
        for _ in range(spec.scheduled):
            pub = _FUTURE_MS + rng.randrange(1, 300) * _DAY_MS
            self._new_post(blog, rng, "SCHEDULED", pub, _END_MS - rng.randrange(_DAY_MS))
        for _ in range(spec.trashed):
            pub = rng.randrange(start_min, end_min) * 60_000
            post = self._new_post(blog, rng, "SOFT_TRASHED", pub, 0)
            post.updated = post.trashed = min(_END_MS, pub + rng.randrange(_DAY_MS, 90 * _DAY_MS))

        for status, count in (
            ("LIVE", spec.pages),
            ("DRAFT", spec.draft_pages),
            ("SOFT_TRASHED", spec.trashed_pages),
        ):
            for _ in range(count):
                pub = rng.randrange(start_min, end_min) * 60_000
                upd = (
                    pub
                    if rng.random() < 0.5
                    else min(_END_MS, pub + rng.randrange(_DAY_MS, 300 * _DAY_MS))
                )
                page = self._new_page(blog, rng, status, pub, upd + rng.randrange(1000))
                if status == "SOFT_TRASHED":
                    page.trashed = page.updated

        for post, count in zip(live, _distribute(spec.comments, len(live), rng), strict=True):
            self._make_comments(blog, post, rng, ["LIVE"] * count)
        extra = ["PENDING"] * spec.pending_comments + ["SPAM"] * spec.spam_comments
        if extra and not live:
            raise ValueError("pending or spam comments need at least one live post")
        for status in extra:
            self._make_comments(blog, rng.choice(live), rng, [status])

        stamps = [r.published for r in (*blog.posts.values(), *blog.pages.values())]
        first = min(stamps, default=_END_MS - 7 * 365 * _DAY_MS)
        blog.published = first - rng.randrange(1, 60) * _DAY_MS - rng.randrange(86_400) * 1000
        blog.updated = max(
            (r.updated for r in (*blog.posts.values(), *blog.pages.values())),
            default=blog.published,
        )

    def _new_post(self, blog: _Blog, rng: random.Random, status: str, pub: int, upd: int) -> _Post:
        title = " ".join(rng.sample(_TITLE_WORDS, rng.randint(2, 5))) + (
            rng.choice(_TITLE_SPICE) if rng.random() < 0.15 else ""
        )
        flags = (_FLAG_EMOJI, _FLAG_LINE_SEP, _FLAG_SCRIPT, 0)[
            bisect_right((0.08, 0.1, 0.12), rng.random())
        ]
        pid = self._new_id(rng)
        post = _Post(
            id=pid,
            key=int(pid),
            status=status,
            published=pub,
            updated=upd,
            title=title,
            slug=self._unique_slug(blog, title),
            seed=rng.getrandbits(48),
            flags=flags,
            author=0 if rng.random() < 0.85 else rng.randint(1, len(self._authors) - 1),
        )
        if rng.random() < 0.7:
            post.labels = tuple(rng.sample(_LABELS, rng.randint(1, 3)))
        if rng.random() < 0.04:
            post.title_link = f"https://example.org/related/{pid[-6:]}"
        if rng.random() < 0.2:
            post.images = tuple(
                f"https://blogger.googleusercontent.com/img/b/R29vZ2xl/AVvXsE{pid[-10:]}{n}/s1600/photo{n}.jpg"
                for n in range(rng.randint(1, 2))
            )
        if rng.random() < 0.02:
            place, lat, lng = rng.choice(_PLACES)
            post.location = (place, lat, lng, "0.3,0.5")
        if status == "SOFT_TRASHED":
            post.trashed = upd
        blog.posts[pid] = post
        return post

    def _new_page(self, blog: _Blog, rng: random.Random, status: str, pub: int, upd: int) -> _Page:
        title = " ".join(rng.sample(_TITLE_WORDS, rng.randint(1, 3)))
        pid = self._new_id(rng)
        page = _Page(
            id=pid,
            key=int(pid),
            status=status,
            published=pub,
            updated=upd,
            title=title,
            slug=_slugify(title),
            seed=rng.getrandbits(48),
        )
        blog.pages[pid] = page
        return page

    def _make_comments(
        self, blog: _Blog, post: _Post, rng: random.Random, statuses: list[str]
    ) -> None:
        low = post.published + 60_000
        high = max(low + 120_000, min(post.published + 180 * _DAY_MS, _END_MS))
        stamps = sorted(rng.randrange(low, high) for _ in statuses)
        siblings = blog.comments_by_post.setdefault(post.id, [])
        for status, pub in zip(statuses, stamps, strict=True):
            cid = self._new_id(rng)
            comment = _Comment(
                id=cid,
                key=int(cid),
                post_id=post.id,
                status=status,
                published=pub,
                updated=pub if rng.random() < 0.9 else pub + rng.randrange(1000, 30 * _DAY_MS),
                seed=rng.getrandbits(48),
                author=rng.randrange(len(self._commenters)),
            )
            earlier = [c for c in siblings[-8:] if c.published < pub]
            if earlier and rng.random() < 0.25:
                comment.in_reply_to = rng.choice(earlier).id
            siblings.append(comment)
            blog.comments[cid] = comment
            if status == "LIVE":
                post.live_comments += 1

    # ---- rendering ----------------------------------------------------------------------------

    def _author(self, index: int) -> dict[str, Any]:
        a = self._authors[index]
        return {
            "id": a["id"],
            "displayName": a["displayName"],
            "url": a["url"],
            "image": dict(a["image"]),
        }

    def _render_post(
        self, blog: _Blog, p: _Post, body: bool = True, images: bool = False
    ) -> dict[str, Any]:
        tz = blog.tz
        link = f"{API_ROOT}/blogs/{blog.id}/posts/{p.id}"
        out: dict[str, Any] = {
            "kind": "blogger#post",
            "id": p.id,
            "blog": {"id": blog.id},
            "published": _render_ts(p.published, tz, False),
            "updated": _render_ts(p.updated, tz, True),
        }
        if p.status != "DRAFT":  # a draft has no public address yet
            local = datetime.fromtimestamp(p.published // 1000, tz)
            out["url"] = f"{blog.url}{local.year:04d}/{local.month:02d}/{p.slug}.html"
        out["selfLink"] = link
        out["title"] = p.title
        if p.title_link:
            out["titleLink"] = p.title_link
        if body:
            out["content"] = p.content if p.content is not None else _post_body(p.seed, p.flags)
        if images and p.images:
            out["images"] = [{"url": u} for u in p.images]
        out["author"] = self._author(p.author)
        out["replies"] = {"totalItems": str(p.live_comments), "selfLink": f"{link}/comments"}
        if p.labels:
            out["labels"] = list(p.labels)
        if p.location:
            name, lat, lng, span = p.location
            out["location"] = {"name": name, "lat": lat, "lng": lng, "span": span}
        out["etag"] = _etag(p.updated, tz)
        out["status"] = p.status
        if p.trashed is not None:
            out["trashed"] = _render_ts(p.trashed, tz, True)
        out["readerComments"] = "ALLOW"
        return out

    def _render_page(self, blog: _Blog, p: _Page, body: bool = True) -> dict[str, Any]:
        tz = blog.tz
        out: dict[str, Any] = {
            "kind": "blogger#page",
            "id": p.id,
            "blog": {"id": blog.id},
            "published": _render_ts(p.published, tz, False),
            "updated": _render_ts(p.updated, tz, True),
        }
        if p.status != "DRAFT":
            out["url"] = f"{blog.url}p/{p.slug}.html"
        out["selfLink"] = f"{API_ROOT}/blogs/{blog.id}/pages/{p.id}"
        out["title"] = p.title
        if body:
            out["content"] = p.content if p.content is not None else _post_body(p.seed, 0)
        out["author"] = self._author(p.author)
        out["etag"] = _etag(p.updated, tz)
        out["status"] = p.status
        if p.trashed is not None:
            out["trashed"] = _render_ts(p.trashed, tz, True)
        return out

    def _render_comment(self, blog: _Blog, c: _Comment, body: bool = True) -> dict[str, Any]:
        tz = blog.tz
        out: dict[str, Any] = {
            "kind": "blogger#comment",
            "id": c.id,
            "post": {"id": c.post_id},
            "blog": {"id": blog.id},
            "published": _render_ts(c.published, tz, True),
            "updated": _render_ts(c.updated, tz, True),
            "selfLink": f"{API_ROOT}/blogs/{blog.id}/posts/{c.post_id}/comments/{c.id}",
        }
        if body and c.status != "EMPTIED":
            out["content"] = c.content if c.content is not None else _comment_body(c.seed)
        person = self._commenters[c.author]
        out["author"] = {**person, "image": dict(person["image"])}
        if c.in_reply_to:
            out["inReplyTo"] = {"id": c.in_reply_to}
        out["status"] = c.status
        return out

    def _render_blog(self, blog: _Blog) -> dict[str, Any]:
        link = f"{API_ROOT}/blogs/{blog.id}"
        if blog.totals[0] != blog.version:
            blog.totals = (
                blog.version,
                sum(p.status == "LIVE" for p in blog.posts.values()),
                sum(p.status == "LIVE" for p in blog.pages.values()),
            )
        _, live_posts, live_pages = blog.totals
        language, country, variant = blog.locale
        return {
            "kind": "blogger#blog",
            "id": blog.id,
            "name": blog.name,
            "description": blog.description,
            "published": _render_ts(blog.published, blog.tz, False),
            "updated": _render_ts(blog.updated, blog.tz, True),
            "url": blog.url,
            "selfLink": link,
            "posts": {"totalItems": live_posts, "selfLink": f"{link}/posts"},
            "pages": {"totalItems": live_pages, "selfLink": f"{link}/pages"},
            "locale": {"language": language, "country": country, "variant": variant},
            "status": "LIVE",
        }

    # ---- orderings ----------------------------------------------------------------------------

    def _view(
        self,
        blog: _Blog,
        stream: str,
        statuses: frozenset[str],
        order: str = "PUBLISHED",
        start_ms: int | None = None,
        end_ms: int | None = None,
        labels: frozenset[str] | None = None,
        post_id: str | None = None,
    ) -> _View:
        """Filtered records newest first, cached per query until the blog changes."""
        cache_key = (
            blog.id,
            blog.version,
            stream,
            statuses,
            order,
            start_ms,
            end_ms,
            labels,
            post_id,
        )
        view = self._views.get(cache_key)
        if view is not None:
            self._views.move_to_end(cache_key)
            return view
        source: Iterable[Any]
        if stream == "posts":
            source = blog.posts.values()
        elif stream == "pages":
            source = blog.pages.values()
        elif post_id is not None:
            source = blog.comments_by_post.get(post_id, ())
        else:
            source = blog.comments.values()
        rows = [
            r
            for r in source
            if r.status in statuses
            and (start_ms is None or r.published >= start_ms)
            and (end_ms is None or r.published < end_ms)
            and (labels is None or (r.labels is not None and not labels.isdisjoint(r.labels)))
        ]
        attr = "updated" if order == "UPDATED" else "published"
        rows.sort(key=lambda r: (getattr(r, attr), r.key), reverse=True)
        view = _View(rows, attr)
        self._views[cache_key] = view
        if len(self._views) > self._CACHE_SIZE:
            self._views.popitem(last=False)
        return view

    # ---- queries used by the server -----------------------------------------------------------

    def access(self, blog_id: str) -> BlogAccess | None:
        blog = self._blogs.get(blog_id)
        return None if blog is None else BlogAccess(blog.public, blog.owned)

    def blog_id_for_url(self, url: str) -> str | None:
        m = re.fullmatch(r"(?:https?://)?([^/?#]+)/?", url.strip(), re.IGNORECASE)
        if not m:
            return None
        host = m.group(1).lower()
        for blog in self._blogs.values():
            if f"{blog.slug}.blogspot.com" == host:
                return blog.id
        return None

    def version(self, blog_id: str) -> int:
        return self._blogs[blog_id].version

    def post_status(self, blog_id: str, post_id: str) -> str | None:
        with self.lock:
            post = self._blogs[blog_id].posts.get(post_id)
            return None if post is None else post.status

    def get_post(
        self, blog_id: str, post_id: str, body: bool = True, images: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            blog, post = self._post(blog_id, post_id)
            return self._render_post(blog, post, body, images)

    def list_page(
        self,
        blog_id: str,
        stream: str,
        *,
        statuses: frozenset[str],
        order: str = "PUBLISHED",
        start_ms: int | None = None,
        end_ms: int | None = None,
        labels: frozenset[str] | None = None,
        post_id: str | None = None,
        after: tuple[int, int] | None = None,
        limit: int = 10,
        body: bool = True,
        images: bool = False,
    ) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
        """One page of a listing and the cursor of its last item if more follow.

        The cursor holds sort values, not an offset, so records inserted ahead of it (e.g. a new
        post) do not shift later pages; a record whose sort value moves past the cursor (orderBy
        UPDATED after an edit) is not returned again by the ongoing pagination, or is missed.
        """
        with self.lock:
            blog = self._blogs[blog_id]
            view = self._view(blog, stream, statuses, order, start_ms, end_ms, labels, post_id)
            start = view.start_after(after)
            chunk = view.items[start : start + limit]
            if stream == "posts":
                items = [self._render_post(blog, r, body, images) for r in chunk]
            elif stream == "pages":
                items = [self._render_page(blog, r, body) for r in chunk]
            else:
                items = [self._render_comment(blog, r, body) for r in chunk]
            more = start + limit < len(view.items)
            return items, (view.cursor_of(chunk[-1]) if more and chunk else None)

    # ---- public read helpers ------------------------------------------------------------------

    @property
    def user(self) -> dict[str, Any]:
        return {
            **self._user,
            "blogs": dict(self._user["blogs"]),
            "locale": dict(self._user["locale"]),
        }

    @property
    def user_id(self) -> str:
        return self._user["id"]

    def blog_ids(self) -> list[str]:
        return list(self._blogs)

    def public_blog_ids(self) -> list[str]:
        return [b.id for b in self._blogs.values() if b.public]

    def owned_blog_ids(self) -> list[str]:
        return [b.id for b in self._blogs.values() if b.owned]

    def blog(self, blog_id: str) -> dict[str, Any]:
        with self.lock:
            return self._render_blog(self._blogs[blog_id])

    def truth(
        self,
        stream: str,
        *,
        blog_ids: Iterable[str] | None = None,
        post_statuses: Iterable[str] = ("LIVE",),
        page_statuses: Iterable[str] = ("LIVE",),
        comment_statuses: Iterable[str] = ("LIVE",),
        start_date: Timestamp | None = None,
        fetch_images: bool = False,
    ) -> list[dict[str, Any]]:
        """Records exactly as the API lists them (fetchBodies=true), blog by blog, newest first.

        `blog_ids` defaults to the user's own blogs (what blogs.listByUser returns). `start_date`
        filters posts and comments on `published`, as startDate does; pages have no date filter.
        Comments are the blog-level listing: every comment with a wanted status, whatever the
        status of its post.
        """
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}")
        with self.lock:
            if stream == "users":
                return [self.user]
            ids = self.owned_blog_ids() if blog_ids is None else list(blog_ids)
            if stream == "blogs":
                return [self._render_blog(self._blogs[i]) for i in ids]
            statuses = {
                "posts": post_statuses,
                "pages": page_statuses,
                "comments": comment_statuses,
            }
            wanted = frozenset(s.upper() for s in statuses[stream])
            start_ms = (
                None if start_date is None or stream == "pages" else parse_timestamp(start_date)
            )
            out: list[dict[str, Any]] = []
            for blog_id in ids:
                items, _ = self.list_page(
                    blog_id,
                    stream,
                    statuses=wanted,
                    start_ms=start_ms,
                    limit=10**9,
                    images=fetch_images,
                )
                out.extend(items)
            return out

    # ---- mutations ----------------------------------------------------------------------------

    def now_ms(self) -> int:
        clock = self.clock
        if clock is None:
            return parse_timestamp(datetime.now(timezone.utc))
        return parse_timestamp(clock if isinstance(clock, datetime) else clock())

    def _post(self, blog_id: str, post_id: str) -> tuple[_Blog, _Post]:
        blog = self._blogs[blog_id]
        try:
            return blog, blog.posts[post_id]
        except KeyError:
            raise KeyError(f"no post {post_id} in blog {blog_id}") from None

    def _touch(self, blog: _Blog, now: int | None = None) -> None:
        blog.version += 1
        if now is not None:
            blog.updated = max(blog.updated, now)

    @staticmethod
    def _check_fields(fields: dict[str, Any], allowed: frozenset[str]) -> None:
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"unsupported fields {sorted(unknown)}; allowed: {sorted(allowed)}")

    @staticmethod
    def _check_status(status: str, allowed: tuple[str, ...]) -> str:
        if status.upper() not in allowed:
            raise ValueError(f"status {status!r} is not one of {allowed}")
        return status.upper()

    def _apply_post_fields(self, post: _Post, fields: dict[str, Any], now: int) -> None:
        self._check_fields(fields, _POST_FIELDS)
        if "title" in fields:
            post.title = fields["title"]
        if "content" in fields:
            post.content = fields["content"]
        if "labels" in fields:
            post.labels = tuple(fields["labels"]) if fields["labels"] else None
        if "titleLink" in fields:
            post.title_link = fields["titleLink"]
        if "images" in fields:
            post.images = tuple(fields["images"]) if fields["images"] else None
        if "status" in fields:
            post.status = self._check_status(fields["status"], POST_STATUSES)
            post.trashed = now if post.status == "SOFT_TRASHED" else None
        if "published" in fields:
            post.published = parse_timestamp(fields["published"]) // 1000 * 1000
        post.updated = parse_timestamp(fields["updated"]) if "updated" in fields else now

    def update_post(self, blog_id: str, post_id: str, **fields: Any) -> dict[str, Any]:
        """Edit a post; `updated` becomes now unless given. Fields use the API's names."""
        with self.lock:
            blog, post = self._post(blog_id, post_id)
            now = self.now_ms()
            self._apply_post_fields(post, fields, now)
            self._touch(blog, now)
            return self._render_post(blog, post)

    def add_post(
        self, blog_id: str, status: str = "LIVE", published: Timestamp | None = None, **fields: Any
    ) -> dict[str, Any]:
        with self.lock:
            blog = self._blogs[blog_id]
            status = self._check_status(status, POST_STATUSES)
            now = self.now_ms()
            if published is not None:
                pub = parse_timestamp(published)
            elif status == "SCHEDULED":
                pub = now + 7 * _DAY_MS
            else:
                pub = now
            pid = self._new_id(self._rng)
            title = fields.get("title") or f"New post {pid[-4:]}"
            post = _Post(
                id=pid,
                key=int(pid),
                status=status,
                published=pub // 1000 * 1000,
                updated=now,
                title=title,
                slug=self._unique_slug(blog, title),
                seed=self._rng.getrandbits(48),
            )
            if status == "SOFT_TRASHED":
                post.trashed = now
            self._apply_post_fields(post, fields, now)
            blog.posts[pid] = post
            self._touch(blog, now)
            return self._render_post(blog, post)

    def publish_post(self, blog_id: str, post_id: str) -> dict[str, Any]:
        """DRAFT or SCHEDULED -> LIVE with `published` and `updated` set to now."""
        with self.lock:
            blog, post = self._post(blog_id, post_id)
            now = self.now_ms()
            post.status = "LIVE"
            post.trashed = None
            post.published = now // 1000 * 1000
            post.updated = now
            self._touch(blog, now)
            return self._render_post(blog, post)

    def delete_post(self, blog_id: str, post_id: str, use_trash: bool = False) -> None:
        """Delete a post with its comments, or with use_trash move it to SOFT_TRASHED."""
        with self.lock:
            blog, post = self._post(blog_id, post_id)
            now = self.now_ms()
            if use_trash:
                post.status = "SOFT_TRASHED"
                post.trashed = post.updated = now
            else:
                del blog.posts[post_id]
                for comment in blog.comments_by_post.pop(post_id, []):
                    del blog.comments[comment.id]
            self._touch(blog, now)

    def add_comment(
        self, blog_id: str, post_id: str, status: str = "LIVE", **fields: Any
    ) -> dict[str, Any]:
        """Add a comment (fields: content, inReplyTo, published).

        Like the real service this leaves the post's `updated` alone; a LIVE comment only counts
        in the post's replies.totalItems.
        """
        self._check_fields(fields, frozenset({"content", "inReplyTo", "published"}))
        with self.lock:
            blog, post = self._post(blog_id, post_id)
            status = self._check_status(status, COMMENT_STATUSES)
            now = self.now_ms()
            pub = parse_timestamp(fields["published"]) if "published" in fields else now
            cid = self._new_id(self._rng)
            comment = _Comment(
                id=cid,
                key=int(cid),
                post_id=post_id,
                status=status,
                published=pub,
                updated=pub,
                seed=self._rng.getrandbits(48),
                author=self._rng.randrange(len(self._commenters)),
                in_reply_to=fields.get("inReplyTo"),
                content=fields.get("content"),
            )
            blog.comments[cid] = comment
            blog.comments_by_post.setdefault(post_id, []).append(comment)
            if status == "LIVE":
                post.live_comments += 1
            self._touch(blog)
            return self._render_comment(blog, comment)

    def update_comment(self, blog_id: str, *ids: str, **fields: Any) -> dict[str, Any]:
        """update_comment(blog_id, [post_id,] comment_id, content=..., status=...).

        Sets `updated` to now unless given; status changes keep replies.totalItems right.
        """
        self._check_fields(fields, frozenset({"content", "status", "updated"}))
        if not 1 <= len(ids) <= 2:
            raise TypeError("update_comment(blog_id, [post_id,] comment_id, **fields)")
        with self.lock:
            blog = self._blogs[blog_id]
            comment = blog.comments.get(ids[-1])
            if comment is None or (len(ids) == 2 and comment.post_id != ids[0]):
                raise KeyError(f"no comment {ids[-1]} in blog {blog_id}")
            post = blog.posts[comment.post_id]
            now = self.now_ms()
            if "content" in fields:
                comment.content = fields["content"]
            if "status" in fields:
                new = self._check_status(fields["status"], COMMENT_STATUSES)
                post.live_comments += (new == "LIVE") - (comment.status == "LIVE")
                comment.status = new
            comment.updated = parse_timestamp(fields["updated"]) if "updated" in fields else now
            self._touch(blog)
            return self._render_comment(blog, comment)

    def _apply_page_fields(self, page: _Page, fields: dict[str, Any], now: int) -> None:
        self._check_fields(fields, _PAGE_FIELDS)
        if "title" in fields:
            page.title = fields["title"]
        if "content" in fields:
            page.content = fields["content"]
        if "status" in fields:
            page.status = self._check_status(fields["status"], PAGE_STATUSES)
            page.trashed = now if page.status == "SOFT_TRASHED" else None
        if "published" in fields:
            page.published = parse_timestamp(fields["published"]) // 1000 * 1000
        page.updated = parse_timestamp(fields["updated"]) if "updated" in fields else now

    def add_page(
        self, blog_id: str, status: str = "LIVE", published: Timestamp | None = None, **fields: Any
    ) -> dict[str, Any]:
        with self.lock:
            blog = self._blogs[blog_id]
            status = self._check_status(status, PAGE_STATUSES)
            now = self.now_ms()
            pub = now if published is None else parse_timestamp(published)
            pid = self._new_id(self._rng)
            title = fields.get("title") or f"New page {pid[-4:]}"
            page = _Page(
                id=pid,
                key=int(pid),
                status=status,
                published=pub // 1000 * 1000,
                updated=now,
                title=title,
                slug=_slugify(title),
                seed=self._rng.getrandbits(48),
                trashed=now if status == "SOFT_TRASHED" else None,
            )
            self._apply_page_fields(page, fields, now)
            blog.pages[pid] = page
            self._touch(blog, now)
            return self._render_page(blog, page)

    def update_page(self, blog_id: str, page_id: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            blog = self._blogs[blog_id]
            page = blog.pages.get(page_id)
            if page is None:
                raise KeyError(f"no page {page_id} in blog {blog_id}")
            now = self.now_ms()
            self._apply_page_fields(page, fields, now)
            self._touch(blog, now)
            return self._render_page(blog, page)

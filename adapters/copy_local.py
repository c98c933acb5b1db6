"""Offline, deterministic ad-copy writer built from phrase templates.

`LocalCopyProvider` needs no network or model: every choice is drawn from a
`random.Random` seeded with the sha256 of the brief's msgspec JSON encoding, so the
same brief always yields the same variants and any change to the brief reshuffles
them. Copy is made of the product name, the description's first sentences and
phrase tables per language and tone, then clipped to `PLATFORM_LIMITS` at a word
boundary with an ellipsis. Lengths are counted in Python characters (code points),
not X's weighted count.

Languages: "en", "es", "fr" and "de" have their own phrases (region subtags such as
"es-MX" use the base language); any other code falls back to English. Custom
instructions are scanned for directives such as "mention free shipping" (also
mencionar/mentionner/erwähnen forms); each becomes a sentence appended to the body,
untranslated. Other instructions only change the seed.

`count` must be 1..MAX_VARIANTS, else `ProviderError("invalid_brief")`. TikTok long and
story posts are held to 300 characters, a house choice (only short is specified).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections import Counter
from typing import NamedTuple

import msgspec

from application.ports import (
    CopyBrief,
    CopyFormat,
    CopyVariant,
    Platform,
    ProviderError,
    Tone,
)

MAX_VARIANTS = 20
CTA_MAX = 30
HOOK_FORMAT_BODY_MAX = 100
_MIN_BODY = 60
_ELLIPSIS = "…"


class Limits(NamedTuple):
    hook: int
    body: int
    total: int | None = None  # whole post: hook, body, cta and hashtags joined by spaces
    tags: int = 4


# (short and hook formats, long and story formats)
PLATFORM_LIMITS: dict[Platform, tuple[Limits, Limits]] = {
    "universal": (Limits(60, 300), Limits(60, 300)),
    "x": (Limits(100, 280, 280), Limits(100, 280, 280)),
    "google": (Limits(30, 90, tags=0), Limits(30, 90, tags=0)),
    "meta": (Limits(40, 125, tags=5), Limits(40, 500, tags=5)),
    "linkedin": (Limits(70, 600, tags=3), Limits(70, 600, tags=3)),
    "tiktok": (Limits(60, 150, 150, 6), Limits(60, 300, 300, 6)),
    "pinterest": (Limits(100, 500, tags=8), Limits(100, 500, tags=8)),
}

_PLATFORM_TAGS: dict[Platform, tuple[str, ...]] = {
    "tiktok": ("#fyp", "#TikTokMadeMeBuyIt"),
    "pinterest": ("#PinterestInspo",),
}


def limits_for(platform: Platform, fmt: CopyFormat) -> Limits:
    return PLATFORM_LIMITS[platform][fmt in ("long", "story")]


class ToneSet(NamedTuple):
    hooks: tuple[str, ...]  # {name}; literal prefixes differ so clipped hooks stay distinct
    ctas: tuple[str, ...]
    closer: str


class Phrases(NamedTuple):
    tones: dict[Tone, ToneSet]
    short: tuple[str, ...]  # {name}, {lead}
    punch: tuple[str, ...]  # body of the "hook" format
    stories: tuple[tuple[str, str, str], ...]  # setup, turn, payoff
    fillers: tuple[str, str]  # pad "long" bodies when the description is short
    default_lead: str


_PHRASES: dict[str, Phrases] = {
    "en": Phrases(
        tones={
            "professional": ToneSet(
                ("Meet {name}", "Introducing {name}", "Why professionals choose {name}", "{name}: quality you can count on"),
                ("Learn more", "See how it works", "Get started today"),
                "Trusted quality, backed by real results.",
            ),
            "casual": ToneSet(
                ("Say hi to {name}", "Honestly? {name} just works", "Your new favorite thing: {name}", "{name} gets it"),
                ("Check it out", "Give it a try", "Grab yours"),
                "Easy, right? We think you'll love it.",
            ),
            "urgent": ToneSet(
                ("Last chance: {name}", "Don't miss {name}", "Hurry, {name} won't wait", "{name} is going fast"),
                ("Buy now", "Claim yours today", "Order before it's gone"),
                "Stock is limited, so don't wait.",
            ),
            "luxe": ToneSet(
                ("The art of {name}", "Discover {name}", "Crafted for the few: {name}", "{name}, refined"),
                ("Discover the collection", "Experience it", "Reserve yours"),
                "Understated, exceptional, unmistakably yours.",
            ),
            "playful": ToneSet(
                ("Psst, {name} is here", "Plot twist: {name}", "Guess who's here? {name}", "{name} just made your day"),
                ("Take it for a spin", "Come say hi", "Let's go!"),
                "Warning: may cause spontaneous happy dances.",
            ),
            "bold": ToneSet(
                ("Meet your match: {name}", "No compromises. {name}.", "Built different: {name}", "{name} changes everything"),
                ("Get it now", "Make the move", "Start today"),
                "Settle for less? Not anymore.",
            ),
        },
        short=("{name}: {lead}.", "{lead}. That's {name}.", "Why {name}? {lead}."),
        punch=("{lead}.", "Yes, really. {lead}.", "{name}. Nothing else comes close."),
        stories=(
            ("You've tried everything. Nothing stuck.", "Then came {name}.", "{lead}. Now it just works."),
            ("It started with a question: what if it could be better?", "The answer was {name}.", "{lead}. And it shows."),
            ("Same routine, same frustrations.", "One day, {name}.", "{lead}. Everything since? Easier."),
        ),
        fillers=("Every detail is designed to make a real difference.", "It fits right into your routine from day one."),
        default_lead="Made to make every day better",
    ),
    "es": Phrases(
        tones={
            "professional": ToneSet(
                (
                    "Conoce {name}",
                    "Presentamos {name}",
                    "Por qué los profesionales eligen {name}",
                    "{name}: calidad en la que confiar",
                ),
                ("Más información", "Descubre cómo funciona", "Empieza hoy"),
                "Calidad de confianza, con resultados reales.",
            ),
            "casual": ToneSet(
                ("Hola, {name}", "¿En serio? {name} simplemente funciona", "Tu nuevo favorito: {name}", "{name} te entiende"),
                ("Míralo ahora", "Pruébalo ya", "Consigue el tuyo"),
                "Fácil, ¿verdad? Te va a encantar.",
            ),
            "urgent": ToneSet(
                ("Última oportunidad: {name}", "No te pierdas {name}", "Date prisa: {name} no espera", "{name} se agota rápido"),
                ("Compra ahora", "Reserva el tuyo hoy", "Pide antes de que se agote"),
                "Las unidades son limitadas: no esperes.",
            ),
            "luxe": ToneSet(
                ("El arte de {name}", "Descubre {name}", "Creado para pocos: {name}", "{name}, refinado"),
                ("Descubre la colección", "Vive la experiencia", "Reserva el tuyo"),
                "Discreto, excepcional, inconfundiblemente tuyo.",
            ),
            "playful": ToneSet(
                (
                    "Psst, {name} ya está aquí",
                    "Giro inesperado: {name}",
                    "¿Adivina quién llegó? {name}",
                    "{name} te alegra el día",
                ),
                ("Pruébalo y verás", "Ven a saludar", "¡Vamos allá!"),
                "Aviso: puede provocar bailes de felicidad espontáneos.",
            ),
            "bold": ToneSet(
                ("Tu mejor aliado: {name}", "Sin concesiones. {name}.", "Hecho diferente: {name}", "{name} lo cambia todo"),
                ("Consíguelo ahora", "Da el paso", "Empieza ya"),
                "¿Conformarte con menos? Nunca más.",
            ),
        },
        short=("{name}: {lead}.", "{lead}. Eso es {name}.", "¿Por qué {name}? {lead}."),
        punch=("{lead}.", "Sí, de verdad. {lead}.", "{name}. Nada se le compara."),
        stories=(
            ("Lo has probado todo. Nada funcionaba.", "Entonces llegó {name}.", "{lead}. Ahora todo fluye."),
            ("Todo empezó con una pregunta: ¿y si pudiera ser mejor?", "La respuesta fue {name}.", "{lead}. Y se nota."),
            ("La misma rutina, las mismas frustraciones.", "Un día, {name}.", "{lead}. ¿Y desde entonces? Todo es más fácil."),
        ),
        fillers=("Cada detalle está pensado para marcar la diferencia.", "Se adapta a tu rutina desde el primer día."),
        default_lead="Pensado para mejorar tu día a día",
    ),
    "fr": Phrases(
        tones={
            "professional": ToneSet(
                ("Découvrez {name}", "Voici {name}", "Pourquoi les pros choisissent {name}", "{name} : une qualité fiable"),
                ("En savoir plus", "Voir comment ça marche", "Commencez aujourd'hui"),
                "Une qualité fiable, des résultats concrets.",
            ),
            "casual": ToneSet(
                (
                    "Dites bonjour à {name}",
                    "Franchement ? {name} fonctionne",
                    "Votre coup de cœur : {name}",
                    "{name}, tout simplement",
                ),
                ("Jetez un œil", "Essayez-le", "Prenez le vôtre"),
                "Facile, non ? Vous allez adorer.",
            ),
            "urgent": ToneSet(
                ("Dernière chance : {name}", "Ne manquez pas {name}", "Vite, {name} n'attend pas", "{name} part très vite"),
                ("Achetez maintenant", "Réservez le vôtre", "Commandez avant rupture"),
                "Stocks limités : n'attendez pas.",
            ),
            "luxe": ToneSet(
                ("L'art de {name}", "L'élégance selon {name}", "Pensé pour quelques-uns : {name}", "{name}, raffiné"),
                ("Découvrir la collection", "Vivez l'expérience", "Entrez dans l'univers"),
                "Discret, exceptionnel, résolument vôtre.",
            ),
            "playful": ToneSet(
                (
                    "Psst, {name} est là",
                    "Rebondissement : {name}",
                    "Devinez qui arrive ? {name}",
                    "{name} illumine votre journée",
                ),
                ("On l'essaie ?", "Venez dire bonjour", "C'est parti !"),
                "Attention : risque de danse de joie spontanée.",
            ),
            "bold": ToneSet(
                (
                    "Votre meilleur allié : {name}",
                    "Sans compromis. {name}.",
                    "Différent par nature : {name}",
                    "{name} change tout",
                ),
                ("Foncez", "Passez à l'action", "Lancez-vous"),
                "Se contenter de moins ? Plus jamais.",
            ),
        },
        short=("{name} : {lead}.", "{lead}. C'est ça, {name}.", "Pourquoi {name} ? {lead}."),
        punch=("{lead}.", "Oui, vraiment. {lead}.", "{name}. Rien ne s'en approche."),
        stories=(
            ("Vous avez tout essayé. Rien ne tenait.", "Puis est arrivé {name}.", "{lead}. Désormais, tout roule."),
            ("Tout a commencé par une question : et si c'était mieux ?", "La réponse : {name}.", "{lead}. Et ça se voit."),
            ("Même routine, mêmes frustrations.", "Un jour, {name}.", "{lead}. Depuis ? Tout est plus simple."),
        ),
        fillers=("Chaque détail est pensé pour faire la différence.", "Il s'intègre à votre quotidien dès le premier jour."),
        default_lead="Conçu pour embellir votre quotidien",
    ),
    "de": Phrases(
        tones={
            "professional": ToneSet(
                (
                    "Das ist {name}",
                    "Wir präsentieren {name}",
                    "Warum Profis auf {name} setzen",
                    "{name}: Qualität, auf die Sie zählen können",
                ),
                ("Mehr erfahren", "So funktioniert's", "Jetzt starten"),
                "Verlässliche Qualität mit echten Ergebnissen.",
            ),
            "casual": ToneSet(
                (
                    "Sag hallo zu {name}",
                    "Ehrlich? {name} funktioniert einfach",
                    "Dein neuer Liebling: {name}",
                    "{name} versteht dich",
                ),
                ("Schau's dir an", "Probier's aus", "Hol dir deins"),
                "Easy, oder? Du wirst es lieben.",
            ),
            "urgent": ToneSet(
                ("Letzte Chance: {name}", "Verpasse {name} nicht", "Schnell, {name} wartet nicht", "{name} ist fast weg"),
                ("Jetzt kaufen", "Sichere dir deins", "Bestellen, bevor es weg ist"),
                "Nur begrenzt verfügbar, also nicht warten.",
            ),
            "luxe": ToneSet(
                ("Die Kunst von {name}", "Entdecken Sie {name}", "Für wenige gemacht: {name}", "{name}, veredelt"),
                ("Kollektion entdecken", "Erleben Sie es", "Jetzt reservieren"),
                "Zurückhaltend, außergewöhnlich, unverwechselbar.",
            ),
            "playful": ToneSet(
                ("Psst, {name} ist da", "Überraschung: {name}", "Rate mal, wer da ist? {name}", "{name} rettet deinen Tag"),
                ("Los geht's!", "Komm vorbei", "Dreh eine Runde"),
                "Achtung: Kann spontane Freudentänze auslösen.",
            ),
            "bold": ToneSet(
                ("Dein perfekter Match: {name}", "Keine Kompromisse. {name}.", "Einfach anders: {name}", "{name} ändert alles"),
                ("Hol es dir jetzt", "Mach den Schritt", "Starte heute"),
                "Mit weniger zufrieden geben? Nie wieder.",
            ),
        },
        short=("{name}: {lead}.", "{lead}. Das ist {name}.", "Warum {name}? {lead}."),
        punch=("{lead}.", "Ja, wirklich. {lead}.", "{name}. Unerreicht."),
        stories=(
            ("Alles ausprobiert. Nichts hat gehalten.", "Dann kam {name}.", "{lead}. Seitdem läuft es einfach."),
            ("Alles begann mit einer Frage: Geht das nicht besser?", "Die Antwort: {name}.", "{lead}. Und das merkt man."),
            ("Gleiche Routine, gleicher Frust.", "Eines Tages: {name}.", "{lead}. Und seitdem? Alles leichter."),
        ),
        fillers=(
            "Jedes Detail ist darauf ausgelegt, einen echten Unterschied zu machen.",
            "Es passt vom ersten Tag an in den Alltag.",
        ),
        default_lead="Gemacht, um jeden Tag besser zu machen",
    ),
}

_STOPWORDS = frozenset(
    {
        "about",
        "also",
        "been",
        "each",
        "from",
        "have",
        "into",
        "just",
        "more",
        "most",
        "much",
        "only",
        "over",
        "such",
        "than",
        "that",
        "their",
        "them",
        "then",
        "there",
        "they",
        "this",
        "very",
        "what",
        "when",
        "where",
        "which",
        "will",
        "with",
        "your",
        "yours",
        "como",
        "este",
        "esta",
        "estos",
        "para",
        "pero",
        "todo",
        "todos",
        "tiene",
        "desde",
        "donde",
        "sobre",
        "cada",
        "avec",
        "dans",
        "cette",
        "elle",
        "leur",
        "mais",
        "nous",
        "plus",
        "pour",
        "sont",
        "tout",
        "tous",
        "vous",
        "votre",
        "aber",
        "auch",
        "dass",
        "dein",
        "deine",
        "eine",
        "einer",
        "einem",
        "durch",
        "nicht",
        "oder",
        "sich",
        "sind",
        "über",
        "werden",
        "wird",
    }
)
_DIRECTIVE = re.compile(
    r"\b(?:mention|include|highlight|emphasi[sz]e|say|menciona|incluye|destaca|mentionne[rz]?|incluez"
    r"|soulignez?|erwähne|nenne|betone)\b[:\s]+(?:that\s+|the\s+fact\s+that\s+)?(?P<what>[^.!?;\n]+)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_END_PUNCT = ".!?… "


class LocalCopyProvider:
    """`CopyWriter` that writes template-based copy offline; see the module docstring."""

    def write(self, brief: CopyBrief) -> list[CopyVariant]:
        name = _squash(brief.product.name)
        if not name:
            raise ProviderError("invalid_brief", "product name is empty", retryable=False)
        if not 1 <= brief.count <= MAX_VARIANTS:
            raise ProviderError("invalid_brief", f"count must be 1..{MAX_VARIANTS}", retryable=False)
        seed = int.from_bytes(hashlib.sha256(msgspec.json.encode(brief)).digest(), "big")
        language = re.split(r"[-_]", brief.language.strip().lower())[0]
        phrases = _PHRASES.get(language, _PHRASES["en"])
        lead, more = _lead(brief.product.description, phrases.default_lead)
        fixed_tags, keyword_tags = _tag_pool(name, brief.product.description, brief.platform)
        m = _Material(
            phrases,
            phrases.tones[brief.tone],
            brief.format,
            limits_for(brief.platform, brief.format),
            name,
            lead,
            more,
            _instructions(brief.custom_instructions),
            fixed_tags,
            keyword_tags,
        )

        n_bodies = len(phrases.stories if brief.format == "story" else phrases.short)
        combos = list(itertools.product(range(len(m.toned.hooks)), range(n_bodies), range(len(m.toned.ctas))))
        random.Random(seed).shuffle(combos)
        uses: list[Counter[int]] = [Counter(), Counter(), Counter()]
        seen: set[tuple[str, str, str]] = set()
        out: list[CopyVariant] = []
        while len(out) < brief.count:
            if not combos:
                raise ProviderError("insufficient_variety", "cannot make that many distinct variants", retryable=False)
            # Least-used parts first, so neighbouring variants differ in hook, body and CTA alike.
            combo = min(combos, key=lambda c: sum(u[i] for u, i in zip(uses, c, strict=True)))
            combos.remove(combo)
            variant = _variant(m, combo, len(out))
            if (variant.hook, variant.body, variant.cta) in seen:
                continue
            seen.add((variant.hook, variant.body, variant.cta))
            for u, i in zip(uses, combo, strict=True):
                u[i] += 1
            out.append(variant)
        return out


class _Material(NamedTuple):
    """What one brief contributes to every variant, worked out once per `write`."""

    phrases: Phrases
    toned: ToneSet
    fmt: CopyFormat
    lim: Limits
    name: str
    lead: str
    more: list[str]
    extra: str
    fixed_tags: list[str]
    keyword_tags: list[str]


def _variant(m: _Material, combo: tuple[int, int, int], k: int) -> CopyVariant:
    """Variant `k` from hook, body and CTA template indexes, clipped to the platform's limits."""
    h, b, c = combo
    hook = _clip(m.toned.hooks[h].format(name=m.name), m.lim.hook)
    cta = _clip(m.toned.ctas[c], CTA_MAX)
    shift = k % max(len(m.keyword_tags), 1)
    tags = [*m.fixed_tags, *m.keyword_tags[shift:], *m.keyword_tags[:shift]][: m.lim.tags]
    main = _body(m, b)
    budget = min(m.lim.body, HOOK_FORMAT_BODY_MAX if m.fmt == "hook" else m.lim.body)
    if m.lim.total is not None:
        total = m.lim.total

        def room(kept: list[str]) -> int:
            return total - len(" ".join([hook, cta, *kept])) - 1

        # Copy beats hashtags, but one tag survives if the body still gets a readable length.
        floor = 1 if tags and room(tags[:1]) >= _MIN_BODY else 0
        while len(tags) > floor and room(tags) < min(len(main) + len(m.extra) + 1, budget):
            tags = tags[:-1]
        budget = min(budget, room(tags))
    return CopyVariant(hook=hook, body=_fit_body(main, m.extra, budget), cta=cta, hashtags=tags)


def _body(m: _Material, idx: int) -> str:
    if m.fmt == "story":
        beats = list(m.phrases.stories[idx])
    elif m.fmt == "hook":
        beats = [m.phrases.punch[idx]]
    else:
        beats = [m.phrases.short[idx]]
    # Only templates are formatted: description sentences may contain braces.
    text = " ".join(beat.format(name=m.name, lead=m.lead) for beat in beats)
    if m.fmt == "long":
        text = " ".join([text, *[*m.more, *m.phrases.fillers][:2], m.toned.closer])
    return text


def _fit_body(main: str, extra: str, budget: int) -> str:
    """Keep the instruction sentence visible by clipping the template part first."""
    if not extra:
        return _clip(main, budget)
    extra = _clip(extra, budget // 2)
    return f"{_clip(main, budget - len(extra) - 1)} {extra}".strip()


def _squash(text: str | None) -> str:
    return " ".join((text or "").split())


def _clip(text: str, limit: int) -> str:
    """Shorten to at most `limit` characters at a word boundary, marking the cut with "…"."""
    if len(text) <= limit:
        return text
    if limit < 2:
        return ""
    cut = text[: limit - 1]
    if text[limit - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    # A single word longer than the limit has no boundary to cut at, so it is cut mid-word.
    return (cut.rstrip(" ,;:.-–—") or text[: limit - 1]) + _ELLIPSIS


def _sentence(text: str) -> str:
    text = _squash(text).rstrip(_END_PUNCT)
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def _lead(description: str | None, default: str) -> tuple[str, list[str]]:
    """First sentence of the description (no final stop) and up to two following sentences."""
    parts = [p for p in _SENTENCE_END.split(_squash(description)) if p.strip(_END_PUNCT)]
    if not parts:
        return default, []
    more = [p if p[-1] in _END_PUNCT else f"{p}." for p in parts[1:3]]
    return parts[0].rstrip(_END_PUNCT), more


def _instructions(text: str | None) -> str:
    found = (_sentence(m["what"]) for m in _DIRECTIVE.finditer((text or "")[:500]))
    return " ".join(filter(None, found))


def _tag_pool(name: str, description: str | None, platform: Platform) -> tuple[list[str], list[str]]:
    """Tags every variant leads with (name, platform), and keyword tags that variants rotate."""
    name_tag = "#" + "".join(w[:1].upper() + w[1:] for w in _WORD.findall(name))
    keywords = [
        f"#{w[:1].upper()}{w[1:]}"
        for w in _WORD.findall(f"{name} {description or ''}")
        if 4 <= len(w) <= 20 and not w.isdigit() and w.casefold() not in _STOPWORDS
    ]
    seen: set[str] = set()
    fixed = _unique_tags([name_tag, *_PLATFORM_TAGS.get(platform, ())], seen)
    return fixed, _unique_tags(keywords, seen)


def _unique_tags(tags: list[str], seen: set[str]) -> list[str]:
    kept: list[str] = []
    for tag in tags:
        if 2 <= len(tag) <= 26 and not tag[1:].isdigit() and tag.casefold() not in seen:
            seen.add(tag.casefold())
            kept.append(tag)
    return kept

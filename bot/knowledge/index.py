"""The knowledge base index: BM25F over Vietnamese syllables, folded and accented, plus pairs.

Each entry is indexed by field (title, example questions, keywords, body), each with a weight.
Features are: the folded syllable ("nguoi"), the accented key ("~ngươi2"), and the folded pair
of adjacent syllables ("nguoi_ngheo"), since Vietnamese words are mostly two syllables.
Unaccented syllables match folded features only; syllables typed with marks add accented keys,
so that "nhà" ranks entries about houses above those that only say "nhá" (a writer who types
marks on most syllables is taken literally on the others too; see `_marked`).

Ranking: BM25F, then the best candidates re-ordered by their closest example question
(idf-weighted cosine) and by how likely each candidate's wording (title, example questions,
keywords) makes the question, against the others: what tells sibling entries apart.
The decision between answering, offering choices and declining rests on a confidence: a small
logistic model (`ConfidenceModel`, fitted by bench/calibrate.py on the knowledge base's own
example questions and separate out-of-scope lists) over signals
such as whether one of the entry's key phrases (title, keywords) is in the question and how
much of the question's information (idf-weighted, two-syllable words matched as pairs,
politeness words counting little) the entry explains. A question about gold prices shares a
few syllables with the knowledge base but leaves most of its weight unexplained.
Field weights were tuned on one half of qa_eval.yaml and checked on the other half (first
session); later changes were chosen on the knowledge base's own example questions (each left
out in turn) and bench/data/qa_dev.yaml, never on qa_eval.yaml.
"""

from __future__ import annotations

import dataclasses
import gc
import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise, repeat
from typing import Literal

from bot.kernel.content import Entry
from bot.kernel.vietnamese import FILLERS, Analyzer, Token, fold, syllables, tone_key
from bot.knowledge.confidence import BARE_BIAS, BARE_WEIGHTS, ConfidenceModel, Signals, Thresholds

Decision = Literal["answer", "choices", "decline"]
__all__ = ["Answer", "ConfidenceModel", "Hit", "KnowledgeIndex", "Signals", "Thresholds", "features"]

FIELD_WEIGHTS = {"title": 3.0, "questions": 1.0, "keywords": 6.0, "situations": 1.5, "related": 0.75, "body": 0.2}
FIELD_B = {"title": 0.3, "questions": 0.5, "keywords": 0.3, "situations": 0.3, "related": 0.3, "body": 0.75}
K1 = 2.0
MAX_QUERY_CHARS = 1500  # a 10,000-character message is searched on its first part
CANDIDATES = 128  # entries still scored once only common features are left
NEUTRAL_RIVAL = 0.6  # a typical runner-up's score ratio, for judging scope in a tie
RERANK = 12  # how many BM25F candidates the phrase similarity re-orders
PHRASE_WEIGHT = 1.0  # its weight against the BM25F score scaled to the best one
WORDING_WEIGHT = 1.0  # weight of the candidates' wording likelihood share (see _wording_share)
WORDING_SMOOTHING = 0.1  # added to every feature count of an entry's wording
WORDING_TEMPERATURE = 5.0  # log-likelihoods are divided by this before they are normalised
MARKED_WRITER = 0.6  # share of marked syllables from which a writer is taken to type all marks
BARE_BODY_WEIGHT = 1.0  # the body's field weight in an entry without example questions
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")
REPAIRED_WEIGHT = 0.5  # a syllable whose typo was repaired, in the confidence
SURER_MARGIN = 0.2  # in a near tie of scores, a candidate this much more confident goes first
SURER_WINDOW = 0.9  # second score / best score from which `_surer_first` compares confidences


@dataclass(frozen=True)
class _CoveragePlan:
    """A question's syllables as coverage reads them, worked out once a question (not a candidate):
    (weight, folded, accented key when matched accented, the pairs with its neighbours)."""

    total: float
    syllables: tuple[tuple[float, str, str | None, tuple[str, ...]], ...]

    @classmethod
    def of(cls, weights: Sequence[tuple[Token, float]], accented: Sequence[bool]) -> _CoveragePlan:
        plan = []
        for i, (token, weight) in enumerate(weights):
            if not weight:
                continue
            pairs = []
            if i > 0:
                pairs.append(f"{weights[i - 1][0].folded}_{token.folded}")
            if i + 1 < len(weights):
                pairs.append(f"{token.folded}_{weights[i + 1][0].folded}")
            plan.append((weight, token.folded, "~" + token.accented if accented[i] else None, tuple(pairs)))
        return cls(sum(w for _, w in weights), tuple(plan))


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    confidence: float  # 0..1: how sure we are this entry answers the question
    signals: Signals | None = None


@dataclass(frozen=True)
class Answer:
    decision: Decision
    hits: tuple[Hit, ...]
    folded: str
    outside: Entry | None = None  # a known out-of-scope topic the question matched (declined)
    nearest_outside: Hit | None = None  # the out-of-scope topic that ranked first, however sure (for --explain)

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


@dataclass(slots=True)
class _Postings:
    docs: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    by_doc: dict[int, float] | None = None  # only for common features


def _plain_features(tokens: Sequence[Token]) -> frozenset[str]:
    """Folded syllables and pairs: what a key phrase is matched on."""
    return frozenset([t.folded for t in tokens] + [f"{a.folded}_{b.folded}" for a, b in pairwise(tokens)])


def features(tokens: Sequence[Token], accented: bool | Sequence[bool]) -> list[str]:
    """The features of a token list (see module doc); duplicates kept for term frequency.

    `accented` says, for all tokens or for each one, whether its accented key is meant.
    """
    out = [t.folded for t in tokens]
    if accented is True:
        out.extend("~" + t.accented for t in tokens)
    elif accented is not False:
        out.extend("~" + t.accented for t, marked in zip(tokens, accented, strict=True) if marked)
    out.extend(f"{a.folded}_{b.folded}" for a, b in pairwise(tokens))
    return out


class KnowledgeIndex:
    def __init__(
        self,
        entries: Iterable[Entry],
        analyzer: Analyzer,
        thresholds: Thresholds | None = None,
        model: ConfidenceModel | None = None,
        outside: Iterable[Entry] = (),
        situations: Mapping[str, Sequence[str]] | None = None,
        common_words: Iterable[str] = (),
        bare_model: ConfidenceModel | None = None,
        related: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """`outside`: known out-of-scope topics (bot/out_of_scope.py), indexed like entries so a
        near miss finds its own topic; a question whose best match is one of them is declined.
        `situations`: entry id -> the words of the situations it covers (bot/knowledge/situations.py);
        `common_words`: narrative words that, like politeness words, count little in coverage;
        `related`: entry id -> a sibling's situation words (`also:`), ranked at half weight."""
        self.analyzer = analyzer
        self._situations = situations or {}
        self._related = related or {}
        self._common_words = tuple(common_words)
        self.thresholds = thresholds or Thresholds()
        self.model = model or ConfidenceModel()
        self.bare_model = bare_model or ConfidenceModel(BARE_WEIGHTS, BARE_BIAS)
        self.entries: list[Entry] = list(entries)
        self._outside_from = len(self.entries)  # entries from this position on are out-of-scope topics
        # "Bare" entries have no example questions (an imported FAQ of titles and bodies): their
        # body weighs more, is matched sentence by sentence, and their confidence has its own model.
        self.entries.extend(outside)
        self._bare = [not e.questions for e in self.entries]
        self._postings: dict[str, _Postings] = {}
        self._idf: dict[str, float] = {}
        self._vocabulary: dict[str, str] = {}  # one-letter-deleted form -> known folded syllable
        # The build allocates millions of small objects and none of them is garbage: the cyclic
        # collector's passes over them would cost a third of the build.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._build()
        finally:
            if collecting:
                gc.enable()

    # ------------------------------------------------------------------ build

    def _build(self) -> None:
        n = len(self.entries)
        per_field: dict[str, list[dict[str, int]]] = {f: [] for f in FIELD_WEIGHTS}
        lengths: dict[str, list[int]] = {f: [] for f in FIELD_WEIGHTS}
        syllable_counts: Counter[str] = Counter()
        accented_forms: dict[str, set[str]] = defaultdict(set)
        fillers = set(FILLERS) | {s for w in self._common_words for s in syllables(w)}
        filler_folded = {fold(f) for f in fillers}
        self._strong: list[frozenset[str]] = []
        self._body: list[frozenset[str]] = []
        self._wording: list[tuple[Counter[str], int]] = []  # feature counts of title, questions, keywords
        phrase_features: list[list[frozenset[str]]] = []
        self._key_phrases: list[list[frozenset[str]]] = []
        for position, entry in enumerate(self.entries):
            situations = tuple(self._situations.get(entry.id, ()))
            # A one-syllable situation word ("bão") is no key phrase: folded, it is also "báo".
            keys = (entry.title, *entry.keywords, *(w for w in situations if len(syllables(w)) > 1))
            self._key_phrases.append([s for s in (_plain_features(self.analyzer.tokens(k)) for k in keys) if s])
            bare = self._bare[position]
            phrases: list[frozenset[str]] = []
            phrase_features.append(phrases)
            strong: set[str] = set()
            body: set[str] = set()
            texts = {
                "title": [entry.title],
                "questions": list(entry.questions),
                "keywords": list(entry.keywords),
                "situations": list(situations),
                "related": list(self._related.get(entry.id, ())),
                # An out-of-scope topic's body is its advice ("hỏi Bảo hiểm xã hội"): not what it is about.
                # A bare entry's body is read sentence by sentence: each is a phrase to be near.
                "body": (_SENTENCE.split(entry.body) if bare else [entry.body]) if position < self._outside_from
                else [""],
            }
            for name, parts in texts.items():
                counts: Counter[str] = Counter()
                length = 0
                target = body if name == "body" else strong
                for part in parts:
                    tokens = self.analyzer.tokens(part)
                    length += len(tokens)
                    # Accented keys only where they decide ranking (title, questions, keywords): in
                    # long bodies they would double the index for little gain.
                    feats = features(tokens, accented=name != "body")
                    counts.update(feats)
                    if feats and (name != "body" or len(tokens) >= 3):
                        phrases.append(frozenset(feats))
                target.update(counts)
                per_field[name].append(counts)
                lengths[name].append(length)
            # A bare entry's body is all it says: its words count as fully explained.
            self._strong.append(frozenset(strong | body if bare else strong))
            self._body.append(frozenset() if bare else frozenset(body - strong))
            wording: Counter[str] = Counter()
            for name in ("title", "questions", "keywords", "situations", "related", *(("body",) if bare else ())):
                wording.update(per_field[name][-1])
            self._wording.append((wording, sum(wording.values())))
        self._wording_vocabulary = set().union(*(counts for counts, _ in self._wording))
        averages = {f: (sum(v) / len(v) if v and sum(v) else 1.0) for f, v in lengths.items()}
        # One pass per entry: its fields' weighted term frequencies, saturated, appended to the
        # postings (document frequency is then the posting length). This is most of the build.
        postings: dict[str, tuple[list[int], list[float]]] = {}
        scale = {name: (FIELD_WEIGHTS[name], FIELD_B[name], averages[name]) for name in per_field}
        body_w, body_b, body_avg = scale.pop("body")
        for i in range(n):
            factor = (BARE_BODY_WEIGHT if self._bare[i] else body_w) / (
                1 - body_b + body_b * (lengths["body"][i] / body_avg))
            doc = {feature: factor * tf for feature, tf in per_field["body"][i].items()}  # the long field
            for name, (w, b, avg) in scale.items():
                factor = w / (1 - b + b * (lengths[name][i] / avg))
                for feature, tf in per_field[name][i].items():
                    doc[feature] = doc.get(feature, 0.0) + factor * tf
            for feature, wtf in doc.items():
                saturated = wtf * (K1 + 1) / (wtf + K1)
                posting = postings.get(feature)
                if posting is None:
                    postings[feature] = ([i], [saturated])
                else:
                    posting[0].append(i)
                    posting[1].append(saturated)
        idf_of_df = [math.log(1 + (n - d + 0.5) / (d + 0.5)) if d else 0.0 for d in range(n + 1)]
        self._idf = {t: idf_of_df[len(d)] for t, (d, _) in postings.items()}
        self._oov_idf = math.log(1 + (n + 0.5) / 0.5)
        self._postings = {f: _Postings(docs, weights) for f, (docs, weights) in postings.items()}
        self._common_df = max(64, n // 100)
        for p in self._postings.values():
            if len(p.docs) > self._common_df:
                p.by_doc = dict(zip(p.docs, p.weights, strict=True))
        # Each title, example question and keyword as a set of features with its idf norm, for
        # the "nearest example question" half of the ranking; norms and the example questions'
        # idf sets are worked out for an entry the first time it is a candidate (`_phrases_of`,
        # `_questions_of`): most of thousands of entries never are, and this halves the build.
        self._phrase_features = phrase_features
        self._phrases: dict[int, list[tuple[frozenset[str], float]]] = {}
        self._phrase_index: dict[int, tuple[dict[str, list[int]], list[float]]] = {}
        self._question_sets: dict[int, list[tuple[frozenset[str], float]]] = {}
        self._gains: dict[int, tuple[dict[str, float], float]] = {}
        # Every syllable the knowledge base uses, most widespread first (the analyser has seen
        # each distinct one), and the spellings of the folded forms of fillers.
        for token in self.analyzer.seen():
            if token.folded in filler_folded:
                accented_forms[token.folded].add(token.accented)
            if token.folded in postings:
                syllable_counts[token.folded] = len(postings[token.folded][0])
        # Typo repair: a folded syllable one deletion away from a known one, the most widespread
        # first, then alphabetically: `seen()` is a set, and its order varies with PYTHONHASHSEED.
        known = sorted(syllable_counts, key=lambda s: (-syllable_counts[s], s))
        for syllable in known:
            if len(syllable) >= 3:
                for i in range(len(syllable)):
                    self._vocabulary.setdefault(syllable[:i] + syllable[i + 1 :], syllable)
        self._known = set(known)
        # Unigram idf for coverage; fillers are told apart by their accented key, and a folded
        # form counts as a filler only when no content word in the knowledge base shares it
        # ("the" may be "thế" or "thẻ": not a filler).
        self._uni_idf = {u: self._idf.get(u, self._oov_idf) for u in known}
        filler_keys = {tone_key(f) for f in fillers}
        self._filler_accented = filler_keys
        self._filler_folded = {
            fold(f) for f in fillers
            if accented_forms.get(fold(f), set()) <= filler_keys
        }

    # ------------------------------------------------------------------ search

    def _repair(self, token: Token) -> Token:
        """Fix a one-letter typo in an unknown syllable ("ngheoo", "nghéo" are fine; "ngeo")."""
        word = token.folded
        if word in self._known or len(word) < 3 or word.isdigit():
            return token
        candidate = self._vocabulary.get(word)  # the typo dropped a letter
        if candidate is None:
            for i in range(len(word)):  # the typo added a letter, or changed one
                candidate = self._vocabulary.get(word[:i] + word[i + 1 :])
                if candidate is None and word[:i] + word[i + 1 :] in self._known:
                    candidate = word[:i] + word[i + 1 :]
                if candidate is not None:
                    break
        if candidate is None:
            return token
        return Token(candidate, token.accented)

    def search(self, text: str, limit: int = 3) -> Answer:
        text = text[:MAX_QUERY_CHARS]
        folded = fold(text)
        typed = self.analyzer.tokens(text)
        tokens = [self._repair(t) for t in typed]
        accented = self._marked(tokens)
        feats = features(tokens, accented)
        if not feats:
            return Answer("decline", (), folded)
        scores = self._bm25f(feats)
        if not scores:
            return Answer("decline", (), folded)
        pool = heapq.nlargest(RERANK, scores, key=scores.__getitem__)
        query = {f: self._idf.get(f, self._oov_idf) for f in feats}
        squares = [(f, w * w) for f, w in query.items()]
        query_norm = math.sqrt(sum(w * w for w in query.values()))
        wording = self._wording_share(pool, feats)
        nearest = {i: self._phrase_similarity(i, squares, query_norm) for i in pool}  # once a candidate
        final = self._rerank(pool, scores, wording, nearest)
        extra = 2 if self._outside_from < len(self.entries) else 0  # room for out-of-scope topics among them
        # Ties keep the pool's order (posting order, i.e. entry order): sorted is stable.
        ranked = sorted(pool, key=final.__getitem__, reverse=True)[: max(limit, 3) + extra]
        # A repaired typo helps find the entry but counts only half towards confidence, so an
        # unrelated word ("bong" → "cong") does not make a question look answered.
        weights = self._query_weights(tokens, accented)
        weights = [(t, w * (1.0 if t == o else REPAIRED_WEIGHT)) for (t, w), o in zip(weights, typed, strict=True)]
        plain = _plain_features(typed)
        coverage = _CoveragePlan.of(weights, accented)
        unknown = sum(1 for t in typed if t.folded not in self._known) / len(typed)
        hits = []
        for rank, i in enumerate(ranked):
            rival = final[ranked[1]] if rank == 0 and len(ranked) > 1 else final[ranked[0]] if rank else 0.0
            signals = Signals(
                key_phrase=self._key_phrase(i, plain),
                coverage=self._coverage(i, coverage),
                nearest_question=nearest[i],
                rival=min(rival / final[i], 2.0),
                length=math.log1p(len(typed)),
                unknown=unknown,
                question_found=self._question_found(i, plain),
                wording=wording[i],
            )
            model = self.bare_model if self._bare[i] else self.model
            hits.append(Hit(self.entries[i], final[i], model.confidence(signals), signals))
        if ranked[0] >= self._outside_from:  # a known out-of-scope topic fits best: decline
            inside = tuple(h for h, i in zip(hits, ranked, strict=True) if i < self._outside_from)
            # named (with its advice) only when it fits as well as an answer would have to
            named = self.entries[ranked[0]] if hits[0].confidence >= self.thresholds.answer else None
            return Answer("decline", inside[:limit], folded, outside=named, nearest_outside=hits[0])
        hits = tuple(h for h, i in zip(hits, ranked, strict=True) if i < self._outside_from)
        hits = _surer_first(hits, SURER_WINDOW)
        return Answer(self._decide(hits), hits[:limit], folded)

    def _rerank(
        self, pool: Sequence[int], scores: dict[int, float], wording: dict[int, float], nearest: dict[int, float],
    ) -> dict[int, float]:
        """The final order of the best BM25F candidates: their score scaled to the best one, plus
        how close the question is to the entry's nearest example question, plus how likely the
        entry's wording makes the question, against the other candidates."""
        top = scores[pool[0]]
        return {
            i: scores[i] / top + PHRASE_WEIGHT * nearest[i] + WORDING_WEIGHT * wording[i]
            for i in pool
        }

    def _wording_share(self, pool: Sequence[int], feats: Sequence[str]) -> dict[int, float]:
        """Each candidate's share of the question's likelihood under the candidates' wording.

        Every entry is a bag of the features of its title, example questions and keywords
        (additively smoothed); the question's log-likelihood under each, softened by
        `WORDING_TEMPERATURE`, is normalised over the candidates. Among sibling entries that
        share the topic words ("thẻ BHYT", "hộ cận nghèo"), this is what tells "ai lập danh
        sách" apart from "được hỗ trợ bao nhiêu": the words their residents' questions use.
        """
        known = [f for f in feats if f in self._wording_vocabulary]
        if not known:
            return dict.fromkeys(pool, 1.0 / len(pool))
        # log(count + smoothing) summed over the question's features = len(known) · log(smoothing)
        # plus each feature the entry has its gain over that (worked out once an entry).
        floor = len(known) * math.log(WORDING_SMOOTHING)
        logs = {}
        for i in pool:
            gains, norm = self._wording_gains(i)
            logs[i] = floor + sum(map(gains.get, known, repeat(0.0))) - len(known) * norm
        best = max(logs.values())
        odds = {i: math.exp((v - best) / WORDING_TEMPERATURE) for i, v in logs.items()}
        total_odds = sum(odds.values())
        return {i: v / total_odds for i, v in odds.items()}

    def _wording_gains(self, doc: int) -> tuple[dict[str, float], float]:
        """The entry's wording as feature -> log((count + smoothing) / smoothing), and the log of
        its smoothed total (made the first time the entry is a candidate)."""
        found = self._gains.get(doc)
        if found is None:
            counts, total = self._wording[doc]
            smoothing = WORDING_SMOOTHING
            base = math.log(smoothing)
            found = self._gains[doc] = (
                {f: math.log(c + smoothing) - base for f, c in counts.items()},
                math.log(total + smoothing * len(self._wording_vocabulary)),
            )
        return found

    def _bm25f(self, feats: Sequence[str]) -> dict[int, float]:
        """BM25F scores of the entries sharing a feature with the query.

        Rare features are scored over their whole posting list; common ones (in more than
        `_common_df` entries) only add to entries a rarer feature already found, through a
        per-entry lookup, and only to the best `CANDIDATES` so far. On a small knowledge base
        every feature is rare and this is exact;
        on thousands of entries it keeps a question to a few milliseconds.
        """
        known = [(f, self._postings[f]) for f in dict.fromkeys(feats) if f in self._postings]
        known.sort(key=lambda item: len(item[1].docs))
        scores: dict[int, float] = defaultdict(float)
        pruned = False
        for feature, p in known:
            idf = self._idf[feature]
            if p.by_doc is None or not scores:
                for doc, weight in zip(p.docs, p.weights, strict=True):
                    scores[doc] += idf * weight
            else:
                if not pruned and len(scores) > CANDIDATES:
                    keep = heapq.nlargest(CANDIDATES, scores, key=scores.__getitem__)
                    scores = defaultdict(float, {doc: scores[doc] for doc in keep})
                pruned = True
                lookup = p.by_doc
                for doc in scores:
                    weight = lookup.get(doc)
                    if weight is not None:
                        scores[doc] += idf * weight
        return scores

    def _key_phrase(self, doc: int, plain: frozenset[str]) -> float:
        """The largest share of one of the entry's key phrases (title, a keyword) in the question."""
        return max((len(p & plain) / len(p) for p in self._key_phrases[doc]), default=0.0)

    def _phrases_of(self, doc: int) -> list[tuple[frozenset[str], float]]:
        phrases = self._phrases.get(doc)
        if phrases is None:
            idf = self._idf
            phrases = [(p, math.sqrt(math.fsum(idf[f] ** 2 for f in p))) for p in self._phrase_features[doc]]
            self._phrases[doc] = phrases
        return phrases

    def _questions_of(self, doc: int) -> list[tuple[frozenset[str], float]]:
        sets = self._question_sets.get(doc)
        if sets is None:
            sets = []
            for question in self.entries[doc].questions:
                plain = _plain_features(self.analyzer.tokens(question))
                total = math.fsum(self._idf.get(f, 0.0) for f in plain)
                if total:
                    sets.append((frozenset(f for f in plain if f in self._idf), total))
            self._question_sets[doc] = sets
        return sets

    def _question_found(self, doc: int, plain: frozenset[str]) -> float:
        """How much of the entry's closest example question (idf-weighted) the question contains."""
        idf = self._idf.__getitem__
        best = 0.0
        for question, total in self._questions_of(doc):
            if not question.isdisjoint(plain):  # fsum is exact: a sum over a set must not depend on its order
                best = max(best, math.fsum(map(idf, question & plain)) / total)
        return best

    def _phrase_similarity(self, doc: int, squares: Sequence[tuple[str, float]], query_norm: float) -> float:
        """Cosine (idf-weighted) between the query (its features with their squared idf) and the
        entry's closest title/question/keyword."""
        postings, norms = self._phrase_postings(doc)
        get = postings.get
        shared = [0.0] * len(norms)  # per phrase: the squared idf of the features it shares with the query
        for feature, square in squares:
            phrases = get(feature)
            if phrases:
                for k in phrases:
                    shared[k] += square
        best = max((s / n for s, n in zip(shared, norms, strict=True) if s), default=0.0)
        return best / query_norm

    def _phrase_postings(self, doc: int) -> tuple[dict[str, list[int]], list[float]]:
        """The entry's phrases as feature → phrase numbers, with each phrase's norm (made once)."""
        found = self._phrase_index.get(doc)
        if found is None:
            postings: dict[str, list[int]] = {}
            norms = []
            for k, (phrase, norm) in enumerate(self._phrases_of(doc)):
                norms.append(norm)
                for feature in phrase:
                    postings.setdefault(feature, []).append(k)
            found = self._phrase_index[doc] = (postings, norms)
        return found

    @staticmethod
    def _marked(tokens: Sequence[Token]) -> list[bool]:
        """Which query syllables to match on their accented key.

        A syllable typed with its marks, always. An unmarked one, or the words an abbreviation
        stands for, only when the writer clearly types marks (most syllables carry them): then
        "ba" really is "ba", not "bà". In a mixed message ("nhận thẻ bao hiem y te") the
        unmarked syllables were just typed without them.
        """
        typed = [t for t in tokens if not t.expanded]
        writer = bool(typed) and sum(t.accented != t.folded for t in typed) >= MARKED_WRITER * len(typed)
        return [writer or (not t.expanded and t.accented != t.folded) for t in tokens]

    def _query_weights(self, tokens: Sequence[Token], accented: Sequence[bool]) -> list[tuple[Token, float]]:
        """Each query syllable with its weight in coverage (a repeated one counts once)."""
        weights: list[tuple[Token, float]] = []
        seen: set[str] = set()
        for token, marked in zip(tokens, accented, strict=True):
            if token.folded in seen:
                weights.append((token, 0.0))
                continue
            seen.add(token.folded)
            idf = self._uni_idf.get(token.folded, self._oov_idf)
            filler = (
                token.accented in self._filler_accented
                if marked
                else token.folded in self._filler_folded
            )
            weights.append((token, idf * (self.thresholds.filler_weight if filler else 1.0)))
        return weights

    def _coverage(self, doc: int, plan: _CoveragePlan) -> float:
        """The share of the query's weight that this entry explains.

        A syllable counts fully when found in the title, questions or keywords, partly when
        only in the body; less again when neither of its neighbours is found with it (most
        Vietnamese words are two syllables, and "khoán" alone does not make "chứng khoán");
        and for an accented query, half when it matches only without its marks ("tử" ≠ "từ").
        """
        if not plan.total:
            return 0.0
        strong, body = self._strong[doc], self._body[doc]
        t = self.thresholds
        body_weight = t.body_weight

        def place(key: str) -> float:
            return 1.0 if key in strong else body_weight if key in body else 0.0

        got = 0.0
        for weight, folded, accented_key, pairs in plan.syllables:
            found = place(folded)
            if not found:
                continue
            if accented_key is not None:
                found = max(place(accented_key), found / 2)
            if pairs and not any(p in strong or p in body for p in pairs):
                found *= t.lone_weight
            got += weight * found
        return got / plan.total

    def _decide(self, hits: Sequence[Hit]) -> Decision:
        """Answer when sure; offer the near-tied candidates when the question is clearly in scope
        but two entries fit it equally (the confidence is then lowered by the tie itself, so the
        scope is judged as if the rival were an ordinary one); otherwise decline. A near tie in
        score that the confidence clearly breaks (`_surer_first`) is no tie."""
        t = self.thresholds
        best = hits[0]
        close = [h for h in hits[1:] if h.score >= t.tie * best.score
                 and best.confidence < h.confidence + SURER_MARGIN]
        if close and best.signals is not None:
            scope = self.model.confidence(dataclasses.replace(best.signals, rival=NEUTRAL_RIVAL))
            if scope >= t.answer:
                return "choices"
        if best.confidence >= t.answer and not close:
            return "answer"
        return "decline"


def _surer_first(hits: tuple[Hit, ...], window: float) -> tuple[Hit, ...]:
    """In a near tie of scores between the first two (the second at least `window` of the first),
    the clearly more confident one first: the scores are close, but one of them explains the
    question and the other does not."""
    if len(hits) > 1 and hits[1].score >= window * hits[0].score and (
            hits[1].confidence >= hits[0].confidence + SURER_MARGIN):
        return (hits[1], hits[0], *hits[2:])
    return hits

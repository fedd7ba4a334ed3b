"""The knowledge index built from content: entries, out-of-scope topics and the situation lexicon.

One function, used by the composition root, `ask`, the search process and the benches, so each
builds exactly the same index from the same folder.
"""

from __future__ import annotations

from bot.kernel.content import Content, ContentError
from bot.kernel.vietnamese import Analyzer
from bot.knowledge import out_of_scope, situations
from bot.knowledge.index import KnowledgeIndex


def build_index(content: Content) -> KnowledgeIndex:
    outside, problems = out_of_scope.load(content.root)
    topic_ids = {t.id.removeprefix(out_of_scope.ID_PREFIX): t.id for t in outside}
    problems += situations.check(content.root, {e.id for e in content.entries} | set(topic_ids))
    if problems:  # the service refuses invalid content, with the same messages as `content check`
        raise ContentError(problems)
    lexicon, _ = situations.load(content.root)
    by_entry = {topic_ids.get(key, key): words for key, words in lexicon.by_entry.items()}
    related = {topic_ids.get(key, key): words for key, words in lexicon.related.items()}
    return KnowledgeIndex(content.entries, Analyzer(content.expansions, content.regional), outside=outside,
                          situations=by_entry, common_words=lexicon.common, related=related)

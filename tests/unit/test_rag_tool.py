"""The search_documents tool in an agent's toolbox: present when documents are given and the
agent's spec names search-documents, its arguments checked, its answer carrying citations."""

from __future__ import annotations

import pytest

from hive.api.agentteam import AgentSpec
from hive.errors import InvalidInput
from hive.runtime.rag.answering import Answer, Citation
from hive.runtime.rag.chunking import Chunk
from hive.runtime.toolbox import Toolbox

AGENT = AgentSpec.model_validate(
    {"name": "reader", "role": "specialist", "tools": [{"name": "search-documents"}]}
)


class CannedAnswerer:
    async def ask(self, question: str) -> Answer:
        chunk = Chunk("/docs/a.md", "A", 0, 5, 20, "fifteen letters", 3)
        return Answer(question, "It is so [1].", True, [Citation(1, chunk)], [chunk])


async def test_the_tool_answers_with_citations_when_documents_are_given() -> None:
    toolbox = Toolbox(documents=CannedAnswerer())  # type: ignore[arg-type]
    registry = toolbox.for_agent(AGENT, None)
    tool = registry.check("search_documents", {"question": "Is it so?"})
    answer = await registry.call(tool, {"question": "Is it so?"})
    assert answer == {
        "answer": "It is so [1].",
        "found": True,
        "citations": [
            {
                "n": 1,
                "source": "/docs/a.md",
                "title": "A",
                "start": 5,
                "end": 20,
                "text": "fifteen letters",
            }
        ],
    }
    with pytest.raises(InvalidInput, match="search_documents"):
        registry.check("search_documents", {"question": ""})
    assert toolbox.unavailable == {}


def test_without_documents_the_tool_is_reported_unavailable() -> None:
    toolbox = Toolbox()
    assert toolbox.for_agent(AGENT, None).tools == {}
    assert toolbox.unavailable == {"reader": ["search-documents"]}

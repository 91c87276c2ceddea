"""The agents' ``search_documents`` tool: a question in, a cited answer from the documents out.

The answer's ``[n]`` map to the ``citations`` listed with it (source file, character offsets,
title), every one of them a chunk the answer was written from; ``found`` is false and the
answer "not found in the documents" when the documents hold nothing relevant.
"""

from __future__ import annotations

from typing import Any

from hive.runtime.rag.answering import Answer, Answerer
from hive.runtime.toolbox import SEARCH_DOCUMENTS
from hive.runtime.tools import Tool


def answer_payload(answer: Answer) -> dict[str, Any]:
    return {
        "answer": answer.text,
        "found": answer.found,
        "citations": [
            {
                "n": c.number,
                "source": c.chunk.source,
                "title": c.chunk.title,
                "start": c.chunk.start,
                "end": c.chunk.end,
                "text": c.chunk.text,
            }
            for c in answer.citations
        ],
    }


def search_documents_tool(answerer: Answerer) -> Tool:
    async def search_documents(question: str) -> dict[str, Any]:
        return answer_payload(await answerer.ask(question))

    return Tool(
        name=SEARCH_DOCUMENTS,
        description="Answer a question from the indexed documents, citing them as [n]; each "
        "citation gives the source file and character offsets. Says 'not found in the "
        "documents' when they do not hold the answer.",
        parameters={
            "type": "object",
            "properties": {"question": {"type": "string", "minLength": 1}},
            "required": ["question"],
            "additionalProperties": False,
        },
        function=search_documents,
    )

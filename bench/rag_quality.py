"""Retrieval and citation quality of hive rag on the shipped corpus and questions
(tests/data/rag/: eleven documents, 74 questions with their source passages, 12 questions about
nothing in them), on a real Weaviate with the local all-MiniLM-L6-v2 embedder.

    python -m bench.rag_quality [--asked 20]     (from the repository root; HIVE_RAG__... settings)

Prints:
1. indexing: chunks and seconds;
2. recall@1/3/5 and the median query time of BM25 only, vector only, hybrid by Weaviate's
   relative-score fusion (alpha 0.5) and hybrid by reciprocal-rank fusion, each without and with
   sentence reranking (a question's top-5 counts when one of its chunks covers at least half of
   a source passage);
3. the "not found" threshold: for cosine thresholds between the question and its best chunk,
   the share of answerable questions kept and of unanswerable ones refused;
4. `rag ask` citation precision (cited chunks that hold a source passage / all citations) on a
   scripted model that cites the right excerpt after first citing one that does not exist (the
   plumbing: mapping and repair) and on the embedded SmolLM2-135M (the real, weak model), with
   how often each answered with citations, said "not found", needed repairs, and how many
   dangling citations were removed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support import weaviate_server

from hive.api.memorystore import MemoryStoreSpec
from hive.runtime.models import Message, Reply
from hive.runtime.rag.answering import Answer, Answerer
from hive.runtime.rag.documents import collect_files, read_document
from hive.runtime.rag.evaluation import Question, QuestionSet, is_relevant, load_questions
from hive.runtime.rag.pipeline import DocumentStore
from hive.runtime.rag.retrieval import Retrieved
from hive.settings import get_settings

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "rag"
CONFIGS = [
    ("bm25", "bm25", None),
    ("vector", "vector", None),
    ("hybrid", "hybrid", "relative_score"),
    ("hybrid", "hybrid", "rrf"),
]


class OracleModel:
    """Cites the excerpt holding the source passage, after first citing one that is not there;
    says not found when no excerpt holds it."""

    def __init__(self, question: Question, retrieved: Retrieved) -> None:
        self.right = next(
            (n for n, h in enumerate(retrieved.hits, 1) if is_relevant(h.chunk, question)), None
        )
        self.dangling = len(retrieved.hits) + 3
        self.calls = 0

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        self.calls += 1
        if self.right is None:
            text = "not found in the documents"
        elif self.calls == 1:
            text = f"The answer is in the documents [{self.dangling}]."
        else:
            text = f"The answer is in the documents [{self.right}]."
        return Reply(content=text, tool_calls=[], finish_reason="stop")


def citation_report(name: str, answers: list[tuple[Question, Answer]]) -> None:
    cited = [(q, c) for q, a in answers for c in a.citations]
    precise = sum(is_relevant(c.chunk, q) for q, c in cited)
    with_citations = sum(bool(a.citations) for _, a in answers)
    not_found = sum(not a.found for _, a in answers)
    repaired = sum(a.repairs > 0 for _, a in answers)
    dangling = sum(len(a.unresolved) for _, a in answers)
    precision = precise / len(cited) if cited else 0.0
    print(
        f"  {name:<24} precision {precision:.3f} ({precise}/{len(cited)} citations)  "
        f"cited {with_citations}/{len(answers)}  not found {not_found}  "
        f"repaired {repaired}  dangling removed {dangling}"
    )


async def measure(spec: MemoryStoreSpec, questions: QuestionSet, asked: int) -> None:
    settings = get_settings()
    with DocumentStore(spec, settings) as store:
        files = collect_files([DATA / "corpus"])
        started = time.perf_counter()
        for path in files:
            await store.index.index(read_document(path))
        took = time.perf_counter() - started
        print(f"indexed {len(files)} files: {store.index.count()} chunks in {took:.2f} s")
        print(
            f"chunks of {settings.rag.chunk_tokens} tokens, overlap {settings.rag.chunk_overlap}; "
            f"{len(questions.questions)} questions, {settings.rag.candidates} candidates per search"
        )
        print("\nrecall@1  recall@3  recall@5  median ms  retrieval")
        for label, mode, fusion in CONFIGS:
            for rerank in ("none", "sentence"):
                found: list[list[bool]] = []
                times = []
                for question in questions.questions:
                    t0 = time.perf_counter()
                    got = await store.retriever.retrieve(
                        question.question,
                        5,
                        mode=mode,
                        fusion=fusion,
                        rerank=rerank,  # type: ignore[arg-type]
                    )
                    times.append((time.perf_counter() - t0) * 1000)
                    found.append([is_relevant(h.chunk, question) for h in got.hits])
                recall = [sum(any(f[:k]) for f in found) / len(found) for k in (1, 3, 5)]
                name = f"{label}{f' ({fusion})' if fusion else ''}, rerank {rerank}"
                print(
                    f"{recall[0]:8.3f}  {recall[1]:8.3f}  {recall[2]:8.3f}  "
                    f"{statistics.median(times):9.1f}  {name}"
                )

        answerable = [
            (await store.retriever.retrieve(q.question)).relevance for q in questions.questions
        ]
        unanswerable = [
            (await store.retriever.retrieve(q)).relevance for q in questions.unanswerable
        ]
        print(
            f"\nbest-chunk cosine: answerable min {min(answerable):.3f} median "
            f"{statistics.median(answerable):.3f}; unanswerable max {max(unanswerable):.3f} "
            f"median {statistics.median(unanswerable):.3f}"
        )
        print("threshold  answerable kept  unanswerable refused")
        for threshold in (0.20, 0.23, 0.25, 0.27, 0.30, 0.33, 0.36, 0.40):
            kept = sum(r >= threshold for r in answerable)
            refused = sum(r < threshold for r in unanswerable)
            mark = (
                "  <- rag.min_relevance"
                if abs(threshold - settings.rag.min_relevance) < 1e-9
                else ""
            )
            print(
                f"{threshold:9.2f}  {kept:>7}/{len(answerable)}  {refused:>13}/{len(unanswerable)}"
                f"{mark}"
            )

        chosen = questions.questions[:asked]
        print(f"\nrag ask citation precision, {len(chosen)} questions, top {settings.rag.top_k}:")
        scripted: list[tuple[Question, Answer]] = []
        for question in chosen:
            retrieved = await store.retriever.retrieve(question.question)
            oracle = OracleModel(question, retrieved)
            answer = await Answerer(store.retriever, oracle, settings.rag).answer(retrieved)
            scripted.append((question, answer))
        citation_report("scripted (plumbing)", scripted)

        from hive.runtime.embedded import EmbeddedModelServer, embedded_model_client

        async with EmbeddedModelServer(settings.embedded_model, start_timeout_s=300) as server:
            model = embedded_model_client(server, timeout_s=300)
            answerer = Answerer(store.retriever, model, settings.rag)
            embedded: list[tuple[Question, Answer]] = []
            started = time.perf_counter()
            for question in chosen:
                embedded.append((question, await answerer.ask(question.question)))
            took = time.perf_counter() - started
            await model.aclose()
        citation_report("embedded SmolLM2-135M", embedded)
        print(f"  embedded: {took / len(chosen):.2f} s per question")
        for question, answer in embedded[:3]:
            print(f"  e.g. {question.question!r} -> {answer.text[:160]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--asked", type=int, default=20, help="Questions asked of the models.")
    args = parser.parse_args()
    questions = load_questions(DATA / "questions.yaml", DATA / "corpus")
    with (
        tempfile.TemporaryDirectory(prefix="bench-rag-") as tmp,
        weaviate_server(Path(tmp)) as server,
    ):
        spec = MemoryStoreSpec.model_validate(
            {
                "backend": "weaviate",
                "connection": {"endpoint": server.url, "grpcPort": server.grpc_port},
                "collection": "BenchDocuments",
            }
        )
        asyncio.run(measure(spec, questions, args.asked))


if __name__ == "__main__":
    main()

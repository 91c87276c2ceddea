"""Retrieval-augmented answers with citations over documents indexed in a Weaviate MemoryStore.

- :mod:`.documents` reads Markdown, text, HTML and PDF files into plain text with a title and a
  content hash;
- :mod:`.chunking` cuts that text into token windows with overlap (the embedding model's own
  tokenizer), each chunk knowing its exact character offsets in the text;
- :mod:`.index` keeps the chunks and their vectors in the store's Weaviate collection, replacing
  a file's chunks when its content hash changes, and answers BM25 and vector queries;
- :mod:`.retrieval` fuses the two (Weaviate's hybrid with relative-score fusion, or
  reciprocal-rank fusion), optionally reranks by sentence similarity, and judges whether
  anything relevant was found;
- :mod:`.answering` asks a chat model for an answer citing the chunks as ``[n]``, sends back
  answers that cite chunks that do not exist, and says "not found in the documents" instead of
  inventing;
- :mod:`.tool` is the agents' ``search_documents`` tool; :mod:`.pipeline` opens a store;
  :mod:`.evaluation` measures recall and citations against a question set.
"""

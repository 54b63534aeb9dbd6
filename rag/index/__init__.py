"""Documents to a searchable index: embedding, the chunk stores (embedded FAISS + BM25, Milvus),
the cross-lingual lexicon, the versioned index and how it is built (docs/architecture.md)."""

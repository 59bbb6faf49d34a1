"""Kayan (كيان): Arabic named-entity recognition on BERT-style encoders."""

__version__ = "0.1.0"

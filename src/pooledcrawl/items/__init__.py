"""Items: pipelines and sinks."""

from pooledcrawl.items.base import Item, Sink, is_item, item_to_dict
from pooledcrawl.items.jsonl import JsonLinesSink
from pooledcrawl.items.processor import ItemProcessor

__all__ = ["Item", "ItemProcessor", "JsonLinesSink", "Sink", "is_item", "item_to_dict"]

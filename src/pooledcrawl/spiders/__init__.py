"""Spider base classes for common crawl shapes: rule-driven and sitemap-driven."""

from pooledcrawl.spiders.crawl import CrawlSpider, Rule
from pooledcrawl.spiders.links import Link, LinkExtractor
from pooledcrawl.spiders.sitemap import SitemapSpider

__all__ = ["CrawlSpider", "Link", "LinkExtractor", "Rule", "SitemapSpider"]

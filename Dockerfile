FROM python:3.11-slim
WORKDIR /app
# Only the repository is installed: no network fetches beyond PyPI packages.
COPY pyproject.toml README.md ./
COPY src ./src
COPY profiles ./profiles
COPY examples ./examples
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 crawler
USER crawler
WORKDIR /home/crawler
ENTRYPOINT ["pooledcrawl"]
CMD ["--help"]

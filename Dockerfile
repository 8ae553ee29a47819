# One image for every role: a country node, the coordinator, and the one-shot lab setup.
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 ncpx \
 && apt-get update && apt-get install -y --no-install-recommends libsodium23 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY keys ./keys
COPY node ./node
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER ncpx
VOLUME ["/data"]
EXPOSE 8100 8200
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8200/readyz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["ncpx"]
CMD ["node", "serve", "--config", "/data/node.toml"]

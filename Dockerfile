FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY erasure ./erasure
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . && useradd --create-home erasure
USER erasure
EXPOSE 8000
CMD ["erasure", "serve", "--bind", "0.0.0.0:8000"]

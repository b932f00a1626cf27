# Two stages: the first builds erasure's wheel from the source (the migrations ship inside it), the
# second installs that wheel and its dependencies, nothing else: no source tree, no editable
# install, no compiler, and not the `standalone` extra (the embedded Postgres and Redis wheels),
# since compose runs Postgres and Redis of their own.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY erasure ./erasure
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
COPY --from=build /dist /dist
RUN pip install --no-cache-dir /dist/erasure-*.whl && rm -rf /dist \
    && useradd --create-home erasure
USER erasure
WORKDIR /home/erasure
EXPOSE 8000
CMD ["erasure", "serve", "--bind", "0.0.0.0:8000"]

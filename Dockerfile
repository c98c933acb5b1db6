# Pressroom: one image for every process; the command picks which one runs
# (`api` by default; `migrate`, `projections`, `relay`, `worker`, `sweeper`, `up`).

# Build stage: turn the source into a wheel, so the final image holds no source tree.
# Only the packages the services run are copied (not tests/ or bench/).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY application/ application/
COPY projections/ projections/
COPY adapters/ adapters/
COPY api/ api/
RUN pip wheel --no-deps --wheel-dir /wheels .

# Runtime stage: the wheel and its dependencies (all published as binary wheels: no compiler needed).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PRESSROOM_HOST=0.0.0.0 \
    PRESSROOM_DATA_DIR=/var/lib/pressroom
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --user-group --uid 10001 --create-home --home-dir /home/pressroom pressroom \
    && mkdir -p /var/lib/pressroom \
    && chown pressroom:pressroom /var/lib/pressroom
USER pressroom
WORKDIR /home/pressroom
EXPOSE 8000
ENTRYPOINT ["pressroom"]
CMD ["api"]

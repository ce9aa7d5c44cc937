# One image for the REST nodes, the gRPC nodes and the test-runner.
# The build stage installs the pinned requirements (all wheels: no compiler needed) into a
# virtual environment; the final stage copies it and runs as an unprivileged user.
FROM python:3.11-slim AS build
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt

FROM python:3.11-slim
RUN groupadd --system --gid 10001 queue \
 && useradd --system --uid 10001 --gid queue --no-create-home --shell /usr/sbin/nologin queue
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY shared/ shared/
COPY rest/ rest/
COPY grpc_svc/ grpc_svc/
COPY proto/ proto/
COPY tests/ tests/
COPY bench/ bench/
COPY data/ data/
COPY README.md nginx.conf nginx.grpc.conf nginx.rate-limits.on.conf nginx.rate-limits.off.conf ./
USER queue
EXPOSE 8000 50051
CMD ["python", "-m", "rest"]

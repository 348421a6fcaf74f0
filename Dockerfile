# One image for every production role: `hub serve`, `hub worker`, `hub scheduler`.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml requirements.lock README.md ./
COPY hub hub
COPY connectors connectors
COPY sync sync
COPY imaging imaging
COPY cli cli
COPY migrations migrations
RUN pip install --no-cache-dir -c requirements.lock .
USER nobody
EXPOSE 8000
CMD ["hub", "serve", "--host", "0.0.0.0"]

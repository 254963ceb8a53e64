# The IdP and the examples in one image: `idp` for the service, `python -m examples...` for the demo.
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY idp ./idp
COPY migrations ./migrations
COPY examples ./examples
# /shared is where the examples' one-shot setup writes the apps' client settings.
RUN pip install '.[examples]' && useradd --system --no-create-home idp \
    && mkdir /shared && chown idp /shared
USER idp
EXPOSE 8000
CMD ["idp", "serve", "--host", "0.0.0.0", "--port", "8000"]

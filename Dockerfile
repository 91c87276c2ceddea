# The Hive image: `hive operator` by default; `hive agent` for agent pods; `hive model serve` for
# a team's embedded model (llama.cpp serving SmolLM2-135M-Instruct, weights included) and
# `hive model serve --embeddings` for its embeddings (all-MiniLM-L6-v2 int8 ONNX, included).
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY hack/models.sh ./hack/models.sh
# llama.cpp is compiled for the baseline CPU, not the build machine's (see Makefile).
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
RUN pip install --no-cache-dir --prefix=/install '.[embedded]'
RUN HIVE_MODELS_DIR=/models HIVE_MODELS_CACHE=/tmp/models PYTHON=python bash hack/models.sh \
    && cp --dereference /models/*.gguf /tmp/model.gguf \
    && cp -r --dereference /models/all-MiniLM-L6-v2-onnx-int8 /tmp/embeddings

FROM python:3.11-slim
COPY --from=build /install /usr/local
COPY --from=build /tmp/model.gguf /opt/hive/models/SmolLM2-135M-Instruct.Q4_1.gguf
ENV HIVE_EMBEDDED_MODEL=/opt/hive/models/SmolLM2-135M-Instruct.Q4_1.gguf
COPY --from=build /tmp/embeddings /opt/hive/models/all-MiniLM-L6-v2-onnx-int8
ENV HIVE_AGENT__EMBEDDINGS__MODEL_DIR=/opt/hive/models/all-MiniLM-L6-v2-onnx-int8
USER 65532:65532
ENTRYPOINT ["hive"]
CMD ["operator"]

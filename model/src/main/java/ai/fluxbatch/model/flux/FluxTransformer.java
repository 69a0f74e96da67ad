package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.model.Scratch;

/**
 * The FLUX.1 transformer (dev and schnell) as the reference implementation computes it: timestep, guidance and
 * vector embeddings, RoPE over (txt_ids, img_ids), double-stream then single-stream blocks, the final layer.
 * All activations stay on the backend; only the small embeddings are computed on the host.
 */
public final class FluxTransformer {
    private static final float NORM_EPS = 1e-6f;

    private final Backend backend;
    private final FluxConfig config;
    private final FluxWeights weights;

    public FluxTransformer(Backend backend, FluxConfig config, FluxWeights weights) {
        this.backend = backend;
        this.config = config;
        this.weights = weights;
    }

    public FluxConfig config() {
        return config;
    }

    /** Bytes the loaded weights occupy on the backend. */
    public long residentBytes() {
        return weights.residentBytes();
    }

    /**
     * Returns the velocity prediction {@code [B, L, outChannels]}. Each block runs in a {@link TensorScope} of its
     * own, so its intermediates are freed when it ends; call this inside a scope of the caller's to free the rest.
     */
    public Tensor forward(FluxInputs in, TapSink taps) {
        FluxInputsCheck.check(in, config);
        int b = in.batch(), l = in.imgLength(), t = in.txtLength();
        Tensor img = weights.imgIn().apply(backend, backend.upload(in.img(), b, l, config.inChannels()));
        Tensor txt = weights.txtIn().apply(backend, backend.upload(in.txt(), b, t, config.contextDim()));

        Tensor timeEmbedding = backend.upload(
                Embeddings.timestep(in.timesteps(), FluxConfig.TIME_EMBED_DIM), b, FluxConfig.TIME_EMBED_DIM);
        taps.tap("tap.time_embedding_256", timeEmbedding);
        Tensor vec = embed(weights.timeIn(), timeEmbedding);
        if (config.guidanceEmbed()) {
            Tensor g = backend.upload(
                    Embeddings.timestep(in.guidance(), FluxConfig.TIME_EMBED_DIM), b, FluxConfig.TIME_EMBED_DIM);
            vec = backend.add(vec, embed(weights.guidanceIn(), g));
        }
        vec = backend.add(vec, embed(weights.vectorIn(), backend.upload(in.y(), b, config.vecDim())));
        taps.tap("tap.vec", vec);

        Tensor pe = backend.upload(
                Embeddings.rope(concatIds(in), b, t + l, config.axesDim(), config.theta()),
                b,
                t + l,
                config.headDim() / 2,
                2,
                2);
        taps.tap("tap.pe", backend.reshape(pe, b, 1, t + l, config.headDim() / 2, 2, 2));

        Tensor siluVec = backend.silu(vec);
        // a block's input stream is freed once its output exists: the streams are made in this pass and nobody else
        // holds them (taps download), so two are resident at a time, not one per block
        for (int i = 0; i < weights.doubleBlocks().size(); i++) {
            try (TensorScope block = backend.openScope()) {
                Tensor[] out = doubleBlock(weights.doubleBlocks().get(i), img, txt, siluVec, pe);
                img = Scratch.replace(img, block.keep(out[0]));
                txt = Scratch.replace(txt, block.keep(out[1]));
                taps.tap("tap.double" + i + ".img", img);
                taps.tap("tap.double" + i + ".txt", txt);
            }
        }
        Tensor x = backend.concatRows(txt, img);
        img.close();
        txt.close();
        for (int i = 0; i < weights.singleBlocks().size(); i++) {
            try (TensorScope block = backend.openScope()) {
                x = Scratch.replace(
                        x, block.keep(singleBlock(weights.singleBlocks().get(i), x, siluVec, pe)));
                taps.tap("tap.single" + i, x);
            }
        }
        x = backend.sliceRows(x, t, l);
        return finalLayer(x, siluVec);
    }

    private Tensor embed(FluxWeights.MlpEmbedder e, Tensor x) {
        return e.out().apply(backend, backend.silu(e.in().apply(backend, x)));
    }

    private static float[] concatIds(FluxInputs in) {
        int axes = in.imgIds().length / (in.batch() * in.imgLength());
        int t = in.txtLength(), l = in.imgLength();
        float[] ids = new float[in.batch() * (t + l) * axes];
        for (int b = 0; b < in.batch(); b++) {
            System.arraycopy(in.txtIds(), b * t * axes, ids, b * (t + l) * axes, t * axes);
            System.arraycopy(in.imgIds(), b * l * axes, ids, (b * (t + l) + t) * axes, l * axes);
        }
        return ids;
    }

    /** Modulation chunks (shift, scale, gate)[, (shift, scale, gate)] of {@code lin(silu(vec))}. */
    private Tensor[] modulation(Linear lin, Tensor siluVec, int chunks) {
        Tensor m = lin.apply(backend, siluVec);
        Tensor[] out = new Tensor[chunks];
        for (int i = 0; i < chunks; i++) {
            out[i] = backend.columns(m, i * config.hidden(), config.hidden());
        }
        return out;
    }

    /** q, k, v of a {@code [B, L, 3*hidden]} projection, q and k RMS-normalized per head. */
    private Tensor[] qkv(Tensor projected, Tensor queryNorm, Tensor keyNorm) {
        int h = config.hidden();
        return new Tensor[] {
            headNorm(backend.columns(projected, 0, h), queryNorm),
            headNorm(backend.columns(projected, h, h), keyNorm),
            backend.columns(projected, 2 * h, h)
        };
    }

    private Tensor headNorm(Tensor x, Tensor scale) {
        int[] s = x.shape();
        Tensor perHead = backend.reshape(x, s[0], s[1], config.heads(), config.headDim());
        return backend.reshape(backend.rmsNorm(perHead, scale, NORM_EPS), s);
    }

    private Tensor attention(Tensor q, Tensor k, Tensor v, Tensor pe) {
        int[] s = q.shape();
        int[] heads = {s[0], s[1], config.heads(), config.headDim()};
        Tensor qr = backend.reshape(backend.rope(backend.reshape(q, heads), pe), s);
        Tensor kr = backend.reshape(backend.rope(backend.reshape(k, heads), pe), s);
        return backend.attention(qr, kr, v, config.heads());
    }

    private Tensor[] doubleBlock(FluxWeights.DoubleBlock w, Tensor img, Tensor txt, Tensor siluVec, Tensor pe) {
        Tensor[] imgMod = modulation(w.img().modulation(), siluVec, 6);
        Tensor[] txtMod = modulation(w.txt().modulation(), siluVec, 6);
        Tensor[] imgQkv = qkv(
                w.img().qkv().apply(backend, modulated(img, imgMod[0], imgMod[1])),
                w.img().queryNorm(),
                w.img().keyNorm());
        Tensor[] txtQkv = qkv(
                w.txt().qkv().apply(backend, modulated(txt, txtMod[0], txtMod[1])),
                w.txt().queryNorm(),
                w.txt().keyNorm());
        Tensor attn = attention(
                backend.concatRows(txtQkv[0], imgQkv[0]),
                backend.concatRows(txtQkv[1], imgQkv[1]),
                backend.concatRows(txtQkv[2], imgQkv[2]),
                pe);
        int t = txt.dim(1), l = img.dim(1);
        Tensor newImg = streamUpdate(w.img(), img, backend.sliceRows(attn, t, l), imgMod);
        Tensor newTxt = streamUpdate(w.txt(), txt, backend.sliceRows(attn, 0, t), txtMod);
        return new Tensor[] {newImg, newTxt};
    }

    /** Attention projection and MLP, each added through its gate. */
    private Tensor streamUpdate(FluxWeights.Stream w, Tensor x, Tensor attn, Tensor[] mod) {
        x = backend.gatedAdd(x, mod[2], w.proj().apply(backend, attn));
        Tensor hidden = backend.gelu(w.mlpIn().apply(backend, modulated(x, mod[3], mod[4])));
        return backend.gatedAdd(x, mod[5], w.mlpOut().apply(backend, hidden));
    }

    private Tensor singleBlock(FluxWeights.SingleBlock w, Tensor x, Tensor siluVec, Tensor pe) {
        Tensor[] mod = modulation(w.modulation(), siluVec, 3);
        Tensor projected = w.linear1().apply(backend, modulated(x, mod[0], mod[1]));
        int h = config.hidden();
        Tensor[] qkv = qkv(backend.columns(projected, 0, 3 * h), w.queryNorm(), w.keyNorm());
        Tensor mlp = backend.gelu(backend.columns(projected, 3 * h, config.mlpHidden()));
        Tensor attn = attention(qkv[0], qkv[1], qkv[2], pe);
        return backend.gatedAdd(x, mod[2], w.linear2().apply(backend, backend.concatColumns(attn, mlp)));
    }

    private Tensor finalLayer(Tensor x, Tensor siluVec) {
        Tensor m = weights.finalModulation().apply(backend, siluVec);
        Tensor shift = backend.columns(m, 0, config.hidden());
        Tensor scale = backend.columns(m, config.hidden(), config.hidden());
        return weights.finalLinear().apply(backend, modulated(x, shift, scale));
    }

    private Tensor modulated(Tensor x, Tensor shift, Tensor scale) {
        return backend.modulate(backend.layerNorm(x, NORM_EPS), shift, scale);
    }
}

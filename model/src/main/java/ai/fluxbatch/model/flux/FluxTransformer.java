package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.model.Scratch;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

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

    /** The block linear layers by checkpoint name ({@link FluxWeights#blockLinears}). */
    public Map<String, Linear> blockLinears() {
        return weights.blockLinears();
    }

    /** This transformer with its block linear layers replaced: every other weight is shared, nothing is copied. */
    public FluxTransformer withBlockLinears(BiFunction<String, Linear, Linear> replace) {
        return new FluxTransformer(backend, config, weights.withBlockLinears(replace));
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
        return run(in, taps, false).out();
    }

    /**
     * The forward pass a {@link #backward} follows: the output and what the backward starts from, every block's input
     * stream (activation checkpointing: a block's intermediates are recomputed during its backward, so a call holds the
     * block boundaries plus one block's intermediates). Call inside a scope of the caller's, which frees them.
     */
    public Checkpoints forwardForBackward(FluxInputs in) {
        return run(in, TapSink.NONE, true);
    }

    /**
     * What a forward pass keeps for its backward: the inputs as uploaded, the conditioning vector, the rotary matrices,
     * each double block's (img, txt) input, each single block's input, the final layer's input and the output.
     */
    public record Checkpoints(
            Tensor imgInput,
            Tensor txtInput,
            Tensor timeEmbedding,
            Tensor guidanceEmbedding,
            Tensor yInput,
            Tensor vec,
            Tensor siluVec,
            Tensor pe,
            List<Tensor> doubleImg,
            List<Tensor> doubleTxt,
            List<Tensor> single,
            Tensor finalInput,
            Tensor out) {}

    private Checkpoints run(FluxInputs in, TapSink taps, boolean keep) {
        FluxInputsCheck.check(in, config);
        int b = in.batch(), l = in.imgLength(), t = in.txtLength();
        Tensor imgInput = backend.upload(in.img(), b, l, config.inChannels());
        Tensor txtInput = backend.upload(in.txt(), b, t, config.contextDim());
        Tensor img = weights.imgIn().apply(backend, imgInput);
        Tensor txt = weights.txtIn().apply(backend, txtInput);

        Tensor timeEmbedding = backend.upload(
                Embeddings.timestep(in.timesteps(), FluxConfig.TIME_EMBED_DIM), b, FluxConfig.TIME_EMBED_DIM);
        taps.tap("tap.time_embedding_256", timeEmbedding);
        Tensor vec = embed(weights.timeIn(), timeEmbedding);
        Tensor guidance = null;
        if (config.guidanceEmbed()) {
            guidance = backend.upload(
                    Embeddings.timestep(in.guidance(), FluxConfig.TIME_EMBED_DIM), b, FluxConfig.TIME_EMBED_DIM);
            vec = backend.add(vec, embed(weights.guidanceIn(), guidance));
        }
        Tensor y = backend.upload(in.y(), b, config.vecDim());
        vec = backend.add(vec, embed(weights.vectorIn(), y));
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
        List<Tensor> doubleImg = new ArrayList<>(), doubleTxt = new ArrayList<>(), single = new ArrayList<>();
        // without a backward to follow, a block's input stream is freed once its output exists: the streams are made
        // in this pass and nobody else holds them (taps download), so two are resident at a time, not one per block
        for (int i = 0; i < weights.doubleBlocks().size(); i++) {
            try (TensorScope block = backend.openScope()) {
                DoubleBlockTape out = doubleBlock(weights.doubleBlocks().get(i), img, txt, siluVec, pe);
                if (keep) {
                    doubleImg.add(img);
                    doubleTxt.add(txt);
                    img = block.keep(out.img().out());
                    txt = block.keep(out.txt().out());
                } else {
                    img = Scratch.replace(img, block.keep(out.img().out()));
                    txt = Scratch.replace(txt, block.keep(out.txt().out()));
                }
                taps.tap("tap.double" + i + ".img", img);
                taps.tap("tap.double" + i + ".txt", txt);
            }
        }
        Tensor x = backend.concatRows(txt, img);
        if (keep) {
            doubleImg.add(img);
            doubleTxt.add(txt);
        } else {
            img.close();
            txt.close();
        }
        for (int i = 0; i < weights.singleBlocks().size(); i++) {
            try (TensorScope block = backend.openScope()) {
                Tensor next = block.keep(singleBlock(weights.singleBlocks().get(i), x, siluVec, pe)
                        .out());
                if (keep) {
                    single.add(x);
                    x = next;
                } else {
                    x = Scratch.replace(x, next);
                }
                taps.tap("tap.single" + i, x);
            }
        }
        if (keep) {
            single.add(x);
        }
        Tensor finalInput = backend.sliceRows(x, t, l);
        Tensor out = finalLayer(finalInput, siluVec).out();
        return new Checkpoints(
                imgInput,
                txtInput,
                timeEmbedding,
                guidance,
                y,
                vec,
                siluVec,
                pe,
                doubleImg,
                doubleTxt,
                single,
                finalInput,
                out);
    }

    /** Receives, for every ternary layer, the gradients of its per-channel scale and of its bias ({@code [out]}). */
    @FunctionalInterface
    public interface LayerGradients {
        LayerGradients NONE = (layer, scale, bias) -> {};

        /** Called inside the layer's block scope: download or keep what is needed before returning. */
        void accept(String layer, Tensor scale, Tensor bias);
    }

    /**
     * Gradients of the inputs of one call: {@code img} and {@code txt} as given in {@link FluxInputs}, the pooled
     * vector {@code y}, and the sinusoidal time and guidance embeddings (null for schnell).
     */
    public record InputGradients(Tensor img, Tensor txt, Tensor y, Tensor timeEmbedding, Tensor guidanceEmbedding) {}

    /**
     * Reverse mode through the whole transformer for {@code dOut}, the gradient of a scalar loss with respect to the
     * output of {@code forward}: hands every ternary layer's scale and bias gradients to {@code layers}, block by
     * block from the last, each block's forward recomputed from its checkpointed input in a scope of its own. Frozen
     * layers (dense weights, norm scales, embedders) only pass gradients on. Returns the input gradients when
     * {@code inputGradients}, else null (which skips the input layers' products).
     */
    public InputGradients backward(Checkpoints f, Tensor dOut, LayerGradients layers, boolean inputGradients) {
        int t = f.doubleTxt().get(0).dim(1), l = f.doubleImg().get(0).dim(1);
        Tensor dSiluVec;
        Tensor dx;
        try (TensorScope scope = backend.openScope()) {
            FinalGrads fin = finalLayerBackward(f.finalInput(), f.siluVec(), dOut);
            dSiluVec = scope.keep(fin.siluVec());
            int b = dOut.dim(0);
            dx = scope.keep(backend.concatRows(backend.zeros(b, t, config.hidden()), fin.input()));
        }
        for (int i = weights.singleBlocks().size() - 1; i >= 0; i--) {
            try (TensorScope scope = backend.openScope()) {
                FluxWeights.SingleBlock w = weights.singleBlocks().get(i);
                SingleBlockTape tape = singleBlock(w, f.single().get(i), f.siluVec(), f.pe());
                BlockGrads g =
                        singleBlockBackward("single_blocks." + i + ".", w, tape, dx, f.siluVec(), f.pe(), layers);
                dx = Scratch.replace(dx, scope.keep(g.streams()[0]));
                dSiluVec = Scratch.replace(dSiluVec, scope.keep(backend.add(dSiluVec, g.siluVec())));
            }
        }
        Tensor dImg, dTxt;
        try (TensorScope scope = backend.openScope()) {
            dTxt = scope.keep(backend.sliceRows(dx, 0, t));
            dImg = scope.keep(backend.sliceRows(dx, t, l));
            dx.close();
        }
        for (int i = weights.doubleBlocks().size() - 1; i >= 0; i--) {
            try (TensorScope scope = backend.openScope()) {
                FluxWeights.DoubleBlock w = weights.doubleBlocks().get(i);
                DoubleBlockTape tape =
                        doubleBlock(w, f.doubleImg().get(i), f.doubleTxt().get(i), f.siluVec(), f.pe());
                boolean needInput = i > 0 || inputGradients;
                BlockGrads g = doubleBlockBackward(
                        "double_blocks." + i + ".", w, tape, dImg, dTxt, f.siluVec(), f.pe(), layers, needInput);
                dImg = Scratch.replace(dImg, g.streams()[0] == null ? null : scope.keep(g.streams()[0]));
                dTxt = Scratch.replace(dTxt, g.streams()[1] == null ? null : scope.keep(g.streams()[1]));
                dSiluVec = Scratch.replace(dSiluVec, scope.keep(backend.add(dSiluVec, g.siluVec())));
            }
        }
        if (!inputGradients) {
            dSiluVec.close();
            return null;
        }
        Tensor dVec = backend.siluBackward(f.vec(), dSiluVec);
        return new InputGradients(
                linearBackward("img_in", weights.imgIn(), f.imgInput(), dImg, layers, true),
                linearBackward("txt_in", weights.txtIn(), f.txtInput(), dTxt, layers, true),
                embedBackward("vector_in", weights.vectorIn(), f.yInput(), dVec, layers),
                embedBackward("time_in", weights.timeIn(), f.timeEmbedding(), dVec, layers),
                f.guidanceEmbedding() == null
                        ? null
                        : embedBackward("guidance_in", weights.guidanceIn(), f.guidanceEmbedding(), dVec, layers));
    }

    /** Gradients a block passes back: of its input stream(s) (img then txt for a double block), and of silu(vec). */
    private record BlockGrads(Tensor[] streams, Tensor siluVec) {}

    private record FinalGrads(Tensor input, Tensor siluVec) {}

    private FinalGrads finalLayerBackward(Tensor x, Tensor siluVec, Tensor dOut) {
        FinalTape tape = finalLayer(x, siluVec);
        Tensor dModulated = linearBackward(
                "final_layer.linear", weights.finalLinear(), tape.modulated(), dOut, LayerGradients.NONE, true);
        Backend.ModulateGrads mg = backend.modulateBackward(tape.normed(), tape.scale(), dModulated);
        Tensor dm = backend.concatColumns(mg.shift(), mg.scale());
        return new FinalGrads(
                backend.layerNormBackward(x, mg.input(), NORM_EPS),
                linearBackward(
                        "final_layer.adaLN_modulation.1",
                        weights.finalModulation(),
                        siluVec,
                        dm,
                        LayerGradients.NONE,
                        true));
    }

    private BlockGrads singleBlockBackward(
            String prefix,
            FluxWeights.SingleBlock w,
            SingleBlockTape tape,
            Tensor dOut,
            Tensor siluVec,
            Tensor pe,
            LayerGradients sink) {
        Backend.GatedAddGrads gate = backend.gatedAddBackward(tape.mod().gate(), tape.projected(), dOut);
        Tensor dJoined = linearBackward(prefix + "linear2", w.linear2(), tape.joined(), gate.update(), sink, true);
        int h = config.hidden();
        Tensor dAttn = backend.columns(dJoined, 0, h);
        Tensor dMlpHidden = backend.geluBackward(tape.mlpHidden(), backend.columns(dJoined, h, config.mlpHidden()));
        Tensor[] dQkv = attentionBackward(tape.attention(), dAttn, pe);
        Tensor dProjected1 =
                backend.concatColumns(qkvBackward(tape.qkv(), w.queryNorm(), w.keyNorm(), dQkv), dMlpHidden);
        Tensor dModulated = linearBackward(prefix + "linear1", w.linear1(), tape.modulated(), dProjected1, sink, true);
        Backend.ModulateGrads mg =
                backend.modulateBackward(tape.normed(), tape.mod().scale(), dModulated);
        Tensor dx = backend.add(dOut, backend.layerNormBackward(tape.x(), mg.input(), NORM_EPS));
        Tensor dMod = backend.concatColumns(backend.concatColumns(mg.shift(), mg.scale()), gate.gate());
        Tensor dSiluVec = linearBackward(prefix + "modulation.lin", w.modulation(), siluVec, dMod, sink, true);
        return new BlockGrads(new Tensor[] {dx}, dSiluVec);
    }

    private BlockGrads doubleBlockBackward(
            String prefix,
            FluxWeights.DoubleBlock w,
            DoubleBlockTape tape,
            Tensor dImg,
            Tensor dTxt,
            Tensor siluVec,
            Tensor pe,
            LayerGradients sink,
            boolean needInput) {
        StreamGrads img = streamUpdateBackward(prefix + "img_", w.img(), tape.img(), dImg, sink);
        StreamGrads txt = streamUpdateBackward(prefix + "txt_", w.txt(), tape.txt(), dTxt, sink);
        Tensor[] dQkv = attentionBackward(tape.attention(), backend.concatRows(txt.attn(), img.attn()), pe);
        int t = tape.txt().x().dim(1), l = tape.img().x().dim(1);
        Tensor[] dImgQkv = new Tensor[3], dTxtQkv = new Tensor[3];
        for (int i = 0; i < 3; i++) {
            dTxtQkv[i] = backend.sliceRows(dQkv[i], 0, t);
            dImgQkv[i] = backend.sliceRows(dQkv[i], t, l);
        }
        StreamInputGrads imgIn =
                streamInputBackward(prefix + "img_", w.img(), tape.img(), img, dImgQkv, siluVec, sink, needInput);
        StreamInputGrads txtIn =
                streamInputBackward(prefix + "txt_", w.txt(), tape.txt(), txt, dTxtQkv, siluVec, sink, needInput);
        return new BlockGrads(new Tensor[] {imgIn.x(), txtIn.x()}, backend.add(imgIn.siluVec(), txtIn.siluVec()));
    }

    /** Gradients after a stream's attention projection and MLP: of x1's residual path, attention output, gates. */
    private record StreamGrads(Tensor x1, Tensor attn, Tensor shift2, Tensor scale2, Tensor gate1, Tensor gate2) {}

    private StreamGrads streamUpdateBackward(
            String prefix, FluxWeights.Stream w, StreamTape tape, Tensor dOut, LayerGradients sink) {
        Backend.GatedAddGrads gate2 = backend.gatedAddBackward(tape.mod2().gate(), tape.mlpOut(), dOut);
        Tensor dActivated =
                linearBackward(prefix + "mlp.2", w.mlpOut(), tape.mlpActivated(), gate2.update(), sink, true);
        Tensor dHidden = backend.geluBackward(tape.mlpHidden(), dActivated);
        Tensor dModulated2 = linearBackward(prefix + "mlp.0", w.mlpIn(), tape.modulated2(), dHidden, sink, true);
        Backend.ModulateGrads mg =
                backend.modulateBackward(tape.normed2(), tape.mod2().scale(), dModulated2);
        Tensor dx1 = backend.add(dOut, backend.layerNormBackward(tape.x1(), mg.input(), NORM_EPS));
        Backend.GatedAddGrads gate1 = backend.gatedAddBackward(tape.mod1().gate(), tape.projected(), dx1);
        Tensor dAttn = linearBackward(prefix + "attn.proj", w.proj(), tape.attn(), gate1.update(), sink, true);
        return new StreamGrads(dx1, dAttn, mg.shift(), mg.scale(), gate1.gate(), gate2.gate());
    }

    private record StreamInputGrads(Tensor x, Tensor siluVec) {}

    private StreamInputGrads streamInputBackward(
            String prefix,
            FluxWeights.Stream w,
            StreamTape tape,
            StreamGrads after,
            Tensor[] dQkv,
            Tensor siluVec,
            LayerGradients sink,
            boolean needInput) {
        Tensor dProjected = qkvBackward(tape.qkv(), w.queryNorm(), w.keyNorm(), dQkv);
        Tensor dModulated1 = linearBackward(prefix + "attn.qkv", w.qkv(), tape.modulated1(), dProjected, sink, true);
        Backend.ModulateGrads mg =
                backend.modulateBackward(tape.normed1(), tape.mod1().scale(), dModulated1);
        Tensor dx =
                needInput ? backend.add(after.x1(), backend.layerNormBackward(tape.x(), mg.input(), NORM_EPS)) : null;
        Tensor dMod = backend.concatColumns(
                backend.concatColumns(backend.concatColumns(mg.shift(), mg.scale()), after.gate1()),
                backend.concatColumns(backend.concatColumns(after.shift2(), after.scale2()), after.gate2()));
        Tensor dSiluVec = linearBackward(prefix + "mod.lin", w.modulation(), siluVec, dMod, sink, true);
        return new StreamInputGrads(dx, dSiluVec);
    }

    /** Through RoPE and attention: the gradients of the (un-rotated) q, k and of v, each {@code [B, L, hidden]}. */
    private Tensor[] attentionBackward(Attention a, Tensor dOut, Tensor pe) {
        float scale = (float) (1.0 / Math.sqrt(config.headDim()));
        Backend.AttentionGrads g =
                backend.attentionBackward(a.query(), a.key(), a.value(), dOut, config.heads(), scale);
        int[] s = a.query().shape();
        return new Tensor[] {
            backend.reshape(backend.ropeBackward(perHead(g.query()), pe), s),
            backend.reshape(backend.ropeBackward(perHead(g.key()), pe), s),
            g.value()
        };
    }

    /** Through the per-head RMS norms of q and k: the gradient of the projection {@code [B, L, 3*hidden]}. */
    private Tensor qkvBackward(Qkv qkv, Tensor queryNorm, Tensor keyNorm, Tensor[] d) {
        Tensor dq = backend.reshape(
                backend.rmsNormBackward(perHead(qkv.rawQuery()), queryNorm, perHead(d[0]), NORM_EPS),
                qkv.rawQuery().shape());
        Tensor dk = backend.reshape(
                backend.rmsNormBackward(perHead(qkv.rawKey()), keyNorm, perHead(d[1]), NORM_EPS),
                qkv.rawKey().shape());
        return backend.concatColumns(backend.concatColumns(dq, dk), d[2]);
    }

    private Tensor embedBackward(String prefix, FluxWeights.MlpEmbedder e, Tensor x, Tensor dOut, LayerGradients sink) {
        Tensor hidden = e.in().apply(backend, x);
        Tensor dActivated = linearBackward(prefix + ".out_layer", e.out(), backend.silu(hidden), dOut, sink, true);
        return linearBackward(prefix + ".in_layer", e.in(), x, backend.siluBackward(hidden, dActivated), sink, true);
    }

    /**
     * Through one linear layer: a ternary layer hands its scale and bias gradients to {@code sink}; a dense one is
     * frozen. Returns the input's gradient, or null when not {@code needInput}.
     */
    private Tensor linearBackward(
            String name, Linear layer, Tensor x, Tensor dy, LayerGradients sink, boolean needInput) {
        if (layer instanceof TernaryLinear t) {
            Backend.TernaryLinearGrads g = backend.ternaryLinearBackward(x, t.weight(), dy, needInput);
            sink.accept(name, g.scale(), g.bias());
            return g.input();
        }
        if (layer instanceof DenseLinear d) {
            return needInput ? backend.linearBackward(dy, d.weight()) : null;
        }
        throw new UnsupportedOperationException(
                name + " is a " + layer.getClass().getSimpleName() + ": only dense and ternary layers have a backward");
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

    /** {@code lin(silu(vec))} cut into {@code chunks} pieces of {@code hidden} columns, in the reference's order. */
    private Tensor[] modulation(Linear lin, Tensor siluVec, int chunks) {
        Tensor m = lin.apply(backend, siluVec);
        Tensor[] out = new Tensor[chunks];
        for (int i = 0; i < chunks; i++) {
            out[i] = backend.columns(m, i * config.hidden(), config.hidden());
        }
        return out;
    }

    /** BFL's {@code ModulationOut}: what one half of a block's modulation vector does to its stream. */
    record ModulationOut(Tensor shift, Tensor scale, Tensor gate) {}

    private ModulationOut[] modulationOut(Linear lin, Tensor siluVec, boolean doubled) {
        Tensor[] m = modulation(lin, siluVec, doubled ? 6 : 3);
        ModulationOut first = new ModulationOut(m[0], m[1], m[2]);
        return doubled ? new ModulationOut[] {first, new ModulationOut(m[3], m[4], m[5])} : new ModulationOut[] {first};
    }

    /**
     * The attention inputs of one stream: its projection {@code [B, L, 3*hidden]} cut into raw q, k, v, and q and k
     * RMS-normalized per head.
     */
    record Qkv(Tensor rawQuery, Tensor rawKey, Tensor query, Tensor key, Tensor value) {}

    private Qkv qkv(Tensor projected, Tensor queryNorm, Tensor keyNorm) {
        int h = config.hidden();
        Tensor rq = backend.columns(projected, 0, h), rk = backend.columns(projected, h, h);
        return new Qkv(rq, rk, headNorm(rq, queryNorm), headNorm(rk, keyNorm), backend.columns(projected, 2 * h, h));
    }

    private Tensor headNorm(Tensor x, Tensor scale) {
        return backend.reshape(backend.rmsNorm(perHead(x), scale, NORM_EPS), x.shape());
    }

    private Tensor perHead(Tensor x) {
        int[] s = x.shape();
        return backend.reshape(x, s[0], s[1], config.heads(), config.headDim());
    }

    /** Attention with RoPE applied to q and k: keeps the rotated q and k, which the backward needs. */
    record Attention(Tensor query, Tensor key, Tensor value, Tensor out) {}

    private Attention attention(Tensor q, Tensor k, Tensor v, Tensor pe) {
        Tensor qr = backend.reshape(backend.rope(perHead(q), pe), q.shape());
        Tensor kr = backend.reshape(backend.rope(perHead(k), pe), k.shape());
        return new Attention(qr, kr, v, backend.attention(qr, kr, v, config.heads()));
    }

    /** What one stream of a double block computed, kept for its backward. */
    record StreamTape(
            Tensor x,
            ModulationOut mod1,
            ModulationOut mod2,
            Tensor normed1,
            Tensor modulated1,
            Qkv qkv,
            Tensor attn,
            Tensor projected,
            Tensor x1,
            Tensor normed2,
            Tensor modulated2,
            Tensor mlpHidden,
            Tensor mlpActivated,
            Tensor mlpOut,
            Tensor out) {}

    record DoubleBlockTape(StreamTape img, StreamTape txt, Attention attention) {}

    private DoubleBlockTape doubleBlock(FluxWeights.DoubleBlock w, Tensor img, Tensor txt, Tensor siluVec, Tensor pe) {
        ModulationOut[] imgMod = modulationOut(w.img().modulation(), siluVec, true);
        ModulationOut[] txtMod = modulationOut(w.txt().modulation(), siluVec, true);
        Tensor imgNormed = backend.layerNorm(img, NORM_EPS), txtNormed = backend.layerNorm(txt, NORM_EPS);
        Tensor imgModulated = backend.modulate(imgNormed, imgMod[0].shift(), imgMod[0].scale());
        Tensor txtModulated = backend.modulate(txtNormed, txtMod[0].shift(), txtMod[0].scale());
        Qkv imgQkv = qkv(
                w.img().qkv().apply(backend, imgModulated),
                w.img().queryNorm(),
                w.img().keyNorm());
        Qkv txtQkv = qkv(
                w.txt().qkv().apply(backend, txtModulated),
                w.txt().queryNorm(),
                w.txt().keyNorm());
        Attention attn = attention(
                backend.concatRows(txtQkv.query(), imgQkv.query()),
                backend.concatRows(txtQkv.key(), imgQkv.key()),
                backend.concatRows(txtQkv.value(), imgQkv.value()),
                pe);
        int t = txt.dim(1), l = img.dim(1);
        StreamTape newImg = streamUpdate(
                w.img(), img, imgMod, imgNormed, imgModulated, imgQkv, backend.sliceRows(attn.out(), t, l));
        StreamTape newTxt = streamUpdate(
                w.txt(), txt, txtMod, txtNormed, txtModulated, txtQkv, backend.sliceRows(attn.out(), 0, t));
        return new DoubleBlockTape(newImg, newTxt, attn);
    }

    /** Attention projection and MLP, each added through its gate. */
    private StreamTape streamUpdate(
            FluxWeights.Stream w,
            Tensor x,
            ModulationOut[] mod,
            Tensor normed1,
            Tensor modulated1,
            Qkv qkv,
            Tensor attn) {
        Tensor projected = w.proj().apply(backend, attn);
        Tensor x1 = backend.gatedAdd(x, mod[0].gate(), projected);
        Tensor normed2 = backend.layerNorm(x1, NORM_EPS);
        Tensor modulated2 = backend.modulate(normed2, mod[1].shift(), mod[1].scale());
        Tensor hidden = w.mlpIn().apply(backend, modulated2);
        Tensor activated = backend.gelu(hidden);
        Tensor mlpOut = w.mlpOut().apply(backend, activated);
        Tensor out = backend.gatedAdd(x1, mod[1].gate(), mlpOut);
        return new StreamTape(
                x,
                mod[0],
                mod[1],
                normed1,
                modulated1,
                qkv,
                attn,
                projected,
                x1,
                normed2,
                modulated2,
                hidden,
                activated,
                mlpOut,
                out);
    }

    /** What a single block computed, kept for its backward. */
    record SingleBlockTape(
            Tensor x,
            ModulationOut mod,
            Tensor normed,
            Tensor modulated,
            Qkv qkv,
            Tensor mlpHidden,
            Tensor mlpActivated,
            Attention attention,
            Tensor joined,
            Tensor projected,
            Tensor out) {}

    private SingleBlockTape singleBlock(FluxWeights.SingleBlock w, Tensor x, Tensor siluVec, Tensor pe) {
        ModulationOut mod = modulationOut(w.modulation(), siluVec, false)[0];
        Tensor normed = backend.layerNorm(x, NORM_EPS);
        Tensor modulated = backend.modulate(normed, mod.shift(), mod.scale());
        Tensor projected1 = w.linear1().apply(backend, modulated);
        int h = config.hidden();
        Qkv qkv = qkv(backend.columns(projected1, 0, 3 * h), w.queryNorm(), w.keyNorm());
        Tensor mlpHidden = backend.columns(projected1, 3 * h, config.mlpHidden());
        Tensor mlp = backend.gelu(mlpHidden);
        Attention attn = attention(qkv.query(), qkv.key(), qkv.value(), pe);
        Tensor joined = backend.concatColumns(attn.out(), mlp);
        Tensor projected = w.linear2().apply(backend, joined);
        return new SingleBlockTape(
                x,
                mod,
                normed,
                modulated,
                qkv,
                mlpHidden,
                mlp,
                attn,
                joined,
                projected,
                backend.gatedAdd(x, mod.gate(), projected));
    }

    /** The final layer's modulation and what it computed, kept for its backward. */
    private record FinalTape(Tensor scale, Tensor normed, Tensor modulated, Tensor out) {}

    private FinalTape finalLayer(Tensor x, Tensor siluVec) {
        Tensor m = weights.finalModulation().apply(backend, siluVec);
        Tensor shift = backend.columns(m, 0, config.hidden());
        Tensor scale = backend.columns(m, config.hidden(), config.hidden());
        Tensor normed = backend.layerNorm(x, NORM_EPS);
        Tensor modulated = backend.modulate(normed, shift, scale);
        return new FinalTape(scale, normed, modulated, weights.finalLinear().apply(backend, modulated));
    }
}

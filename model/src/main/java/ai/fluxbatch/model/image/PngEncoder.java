package ai.fluxbatch.model.image;

import ai.fluxbatch.model.pipeline.RgbImage;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * 8-bit RGB PNG with text chunks, in memory. Written by hand because ImageIO needs java.desktop (absent from the slim
 * executor runtime) and a metadata-tree dance for text chunks; PNG is zlib plus CRC32, both in java.util.zip.
 * Latin-1 text goes in tEXt chunks (what most tools read), anything else in UTF-8 iTXt chunks.
 */
public final class PngEncoder {
    private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    private PngEncoder() {}

    public static byte[] encode(RgbImage image, Map<String, String> text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(image.rgb().length / 2 + 1024);
        out.writeBytes(SIGNATURE);
        ByteBuffer ihdr = ByteBuffer.allocate(13);
        ihdr.putInt(image.width())
                .putInt(image.height())
                .put((byte) 8)
                .put((byte) 2) // 8 bits, truecolour
                .put((byte) 0)
                .put((byte) 0)
                .put((byte) 0); // deflate, adaptive filtering, no interlace
        chunk(out, "IHDR", ihdr.array());
        for (Map.Entry<String, String> e : text.entrySet()) {
            textChunk(out, e.getKey(), e.getValue());
        }
        chunk(out, "IDAT", compress(image));
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void textChunk(ByteArrayOutputStream out, String key, String value) {
        byte[] k = key.getBytes(StandardCharsets.ISO_8859_1);
        if (key.isEmpty()
                || key.length() > 79
                || !StandardCharsets.ISO_8859_1.newEncoder().canEncode(key)) {
            throw new IllegalArgumentException("PNG text keyword '" + key + "' must be 1-79 Latin-1 characters");
        }
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes(k);
        body.write(0);
        if (StandardCharsets.ISO_8859_1.newEncoder().canEncode(value)) {
            body.writeBytes(value.getBytes(StandardCharsets.ISO_8859_1));
            chunk(out, "tEXt", body.toByteArray());
        } else {
            body.write(0); // not compressed
            body.write(0); // compression method
            body.write(0); // empty language tag
            body.write(0); // empty translated keyword
            body.writeBytes(value.getBytes(StandardCharsets.UTF_8));
            chunk(out, "iTXt", body.toByteArray());
        }
    }

    /** Each scanline with filter type Sub (difference to the pixel on the left), which suits smooth pictures. */
    private static byte[] compress(RgbImage image) {
        int stride = image.width() * 3;
        byte[] raw = new byte[(stride + 1) * image.height()];
        byte[] rgb = image.rgb();
        for (int y = 0; y < image.height(); y++) {
            int o = y * (stride + 1);
            raw[o] = 1;
            for (int x = 0; x < stride; x++) {
                int left = x >= 3 ? rgb[y * stride + x - 3] : 0;
                raw[o + 1 + x] = (byte) (rgb[y * stride + x] - left);
            }
        }
        Deflater deflater = new Deflater(6);
        deflater.setInput(raw);
        deflater.finish();
        ByteArrayOutputStream z = new ByteArrayOutputStream(raw.length / 2 + 64);
        byte[] buf = new byte[1 << 16];
        while (!deflater.finished()) {
            z.write(buf, 0, deflater.deflate(buf));
        }
        deflater.end();
        return z.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream out, String type, byte[] data) {
        byte[] t = type.getBytes(StandardCharsets.US_ASCII);
        out.writeBytes(ByteBuffer.allocate(4).putInt(data.length).array());
        out.writeBytes(t);
        out.writeBytes(data);
        CRC32 crc = new CRC32();
        crc.update(t);
        crc.update(data);
        out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }
}

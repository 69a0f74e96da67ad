package ai.fluxbatch.model.image;

import ai.fluxbatch.model.pipeline.RgbImage;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Reads back what {@link PngEncoder} writes (8-bit RGB, non-interlaced, any filter type), checking every CRC: used to
 * verify images on storage (a complete PNG ends in a valid IEND) and by tests.
 */
public final class PngDecoder {
    /** The picture and its text chunks. */
    public record Decoded(RgbImage image, Map<String, String> text) {}

    private PngDecoder() {}

    public static Decoded decode(byte[] png) {
        ByteBuffer in = ByteBuffer.wrap(png);
        for (int i = 0; i < 8; i++) {
            if (in.remaining() == 0 || in.get() != signatureByte(i)) {
                throw new IllegalArgumentException("not a PNG file: bad signature");
            }
        }
        int width = -1, height = -1;
        ByteArrayOutputStream idat = new ByteArrayOutputStream();
        Map<String, String> text = new LinkedHashMap<>();
        while (true) {
            if (in.remaining() < 12) {
                throw new IllegalArgumentException("PNG is truncated: no IEND chunk");
            }
            int length = in.getInt();
            if (length < 0 || length > in.remaining() - 8) {
                throw new IllegalArgumentException("PNG is truncated: chunk of " + length + " bytes past the end");
            }
            byte[] type = new byte[4];
            in.get(type);
            byte[] data = new byte[length];
            in.get(data);
            CRC32 crc = new CRC32();
            crc.update(type);
            crc.update(data);
            if ((int) crc.getValue() != in.getInt()) {
                throw new IllegalArgumentException(
                        "PNG chunk " + new String(type, StandardCharsets.US_ASCII) + " has a bad CRC");
            }
            String t = new String(type, StandardCharsets.US_ASCII);
            ByteBuffer d = ByteBuffer.wrap(data);
            switch (t) {
                case "IHDR" -> {
                    width = d.getInt();
                    height = d.getInt();
                    if (d.get() != 8 || d.get() != 2 || d.get() != 0 || d.get() != 0 || d.get() != 0) {
                        throw new IllegalArgumentException("only 8-bit RGB non-interlaced PNG is read");
                    }
                }
                case "IDAT" -> idat.writeBytes(data);
                case "tEXt" ->
                    text.put(
                            keyword(data),
                            new String(
                                    data,
                                    keyword(data).length() + 1,
                                    data.length - keyword(data).length() - 1,
                                    StandardCharsets.ISO_8859_1));
                case "iTXt" -> text.put(keyword(data), itxt(data));
                case "IEND" -> {
                    return new Decoded(
                            new RgbImage(width, height, unfilter(inflate(idat.toByteArray()), width, height)), text);
                }
                default -> {}
            }
        }
    }

    private static byte signatureByte(int i) {
        return new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}[i];
    }

    private static String keyword(byte[] data) {
        int end = 0;
        while (end < data.length && data[end] != 0) {
            end++;
        }
        return new String(data, 0, end, StandardCharsets.ISO_8859_1);
    }

    private static String itxt(byte[] data) {
        int p = keyword(data).length() + 3; // NUL, compression flag, method
        for (int nulls = 0; nulls < 2; p++) {
            if (data[p] == 0) {
                nulls++;
            }
        }
        return new String(data, p, data.length - p, StandardCharsets.UTF_8);
    }

    private static byte[] inflate(byte[] z) {
        Inflater inflater = new Inflater();
        inflater.setInput(z);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[1 << 16];
        try {
            while (!inflater.finished()) {
                int n = inflater.inflate(buf);
                if (n == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
                    throw new IllegalArgumentException("PNG image data is truncated");
                }
                out.write(buf, 0, n);
            }
        } catch (DataFormatException e) {
            throw new IllegalArgumentException("PNG image data is corrupt: " + e.getMessage(), e);
        } finally {
            inflater.end();
        }
        return out.toByteArray();
    }

    private static byte[] unfilter(byte[] raw, int width, int height) {
        int stride = width * 3;
        if (raw.length != (stride + 1) * height) {
            throw new IllegalArgumentException(
                    "PNG image data has " + raw.length + " bytes, expected " + (stride + 1) * height);
        }
        byte[] out = new byte[stride * height];
        for (int y = 0; y < height; y++) {
            int filter = raw[y * (stride + 1)];
            for (int x = 0; x < stride; x++) {
                int v = raw[y * (stride + 1) + 1 + x] & 0xff;
                int a = x >= 3 ? out[y * stride + x - 3] & 0xff : 0;
                int b = y > 0 ? out[(y - 1) * stride + x] & 0xff : 0;
                int c = x >= 3 && y > 0 ? out[(y - 1) * stride + x - 3] & 0xff : 0;
                out[y * stride + x] = (byte) (v
                        + switch (filter) {
                            case 0 -> 0;
                            case 1 -> a;
                            case 2 -> b;
                            case 3 -> (a + b) / 2;
                            case 4 -> paeth(a, b, c);
                            default -> throw new IllegalArgumentException("PNG filter type " + filter + " is invalid");
                        });
            }
        }
        return out;
    }

    private static int paeth(int a, int b, int c) {
        int p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}

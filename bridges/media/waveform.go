package media

// Voice waveforms. Matrix (MSC3246, org.matrix.msc1767.audio.waveform) uses
// integers 0..1024; WhatsApp sends 64 bytes 0..100; Telegram packs 5-bit
// values (0..31) little-endian into bytes, usually 100 values in 63 bytes.

// MatrixWaveformMax is the top of an MSC3246 waveform value.
const MatrixWaveformMax = 1024

// WhatsAppWaveformLen and WhatsAppWaveformMax are WhatsApp's waveform size
// and value range.
const (
	WhatsAppWaveformLen = 64
	WhatsAppWaveformMax = 100
)

// TelegramWaveformLen and TelegramWaveformMax are the number of values
// Telegram clients send and their range.
const (
	TelegramWaveformLen = 100
	TelegramWaveformMax = 31
)

// MaxWaveformLen bounds the values read from any waveform.
const MaxWaveformLen = 1024

func scale(v, from, to int) int {
	if v <= 0 {
		return 0
	}
	if v >= from {
		return to
	}
	return (v*to + from/2) / from
}

// resample maps vals to n values by picking the value of each target slot's
// source position (nearest-lower), which keeps peaks for the usual 64↔100.
func resample(vals []int, n int) []int {
	if len(vals) == 0 || n <= 0 {
		return nil
	}
	out := make([]int, n)
	for i := range out {
		out[i] = vals[i*len(vals)/n]
	}
	return out
}

// WaveformFromWhatsApp converts WhatsApp's 0..100 bytes to MSC3246.
func WaveformFromWhatsApp(wf []byte) []int {
	if len(wf) > MaxWaveformLen {
		wf = wf[:MaxWaveformLen]
	}
	out := make([]int, len(wf))
	for i, v := range wf {
		out[i] = scale(int(v), WhatsAppWaveformMax, MatrixWaveformMax)
	}
	return out
}

// WaveformToWhatsApp converts an MSC3246 waveform to WhatsApp's 64 bytes
// 0..100 (nil for an empty waveform).
func WaveformToWhatsApp(wf []int) []byte {
	if len(wf) == 0 {
		return nil
	}
	if len(wf) > MaxWaveformLen {
		wf = wf[:MaxWaveformLen]
	}
	vals := resample(wf, WhatsAppWaveformLen)
	out := make([]byte, len(vals))
	for i, v := range vals {
		out[i] = byte(scale(v, MatrixWaveformMax, WhatsAppWaveformMax))
	}
	return out
}

// DecodeTelegramWaveform unpacks Telegram's 5-bit waveform (values 0..31).
func DecodeTelegramWaveform(packed []byte) []int {
	n := len(packed) * 8 / 5
	n = min(n, MaxWaveformLen)
	out := make([]int, n)
	for i := range out {
		bit := i * 5
		idx := bit / 8
		v := int(packed[idx])
		if idx+1 < len(packed) {
			v |= int(packed[idx+1]) << 8
		}
		out[i] = (v >> (bit % 8)) & 0x1f
	}
	return out
}

// EncodeTelegramWaveform packs values 0..31 (clamped) 5 bits each.
func EncodeTelegramWaveform(vals []int) []byte {
	vals = vals[:min(len(vals), MaxWaveformLen)]
	out := make([]byte, (len(vals)*5+7)/8)
	for i, v := range vals {
		v = max(0, min(v, TelegramWaveformMax))
		bit := i * 5
		idx := bit / 8
		w := v << (bit % 8)
		out[idx] |= byte(w)
		if idx+1 < len(out) {
			out[idx+1] |= byte(w >> 8)
		}
	}
	return out
}

// WaveformFromTelegram converts Telegram's packed waveform to MSC3246.
func WaveformFromTelegram(packed []byte) []int {
	vals := DecodeTelegramWaveform(packed)
	for i, v := range vals {
		vals[i] = scale(v, TelegramWaveformMax, MatrixWaveformMax)
	}
	return vals
}

// WaveformToTelegram converts an MSC3246 waveform to Telegram's packed form
// of 100 values (nil for an empty waveform).
func WaveformToTelegram(wf []int) []byte {
	if len(wf) == 0 {
		return nil
	}
	vals := resample(wf[:min(len(wf), MaxWaveformLen)], TelegramWaveformLen)
	for i, v := range vals {
		vals[i] = scale(v, MatrixWaveformMax, TelegramWaveformMax)
	}
	return EncodeTelegramWaveform(vals)
}

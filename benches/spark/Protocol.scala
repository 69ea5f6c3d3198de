// The shared data protocol of the Ember benchmarks, in Scala (see benches/README.md and
// benches/src/protocol.rs, benches/src/answer.rs for the Rust side). Every formula here must
// stay bit-identical to the Rust one: Long arithmetic wraps exactly like u64, shifts are >>>,
// and unsigned values are printed with java.lang.Long.toUnsignedString.

object Protocol {
  val Golden: Long = 0x9E3779B97F4A7C15L

  val NPairs: Long = 10000000L
  val PairKeys: Long = 1000000L
  val Partitions: Int = 8
  val LrPoints: Long = 1000000L
  val LrFeatures: Int = 10
  val LrIterations: Int = 10

  /** splitmix64 finalizer of x + Golden, all arithmetic wrapping. */
  @inline def mix(x: Long): Long = {
    var z = x + Golden
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL
    z ^ (z >>> 31)
  }

  /** Partition p of parts over 0 until n: [p*n/parts, (p+1)*n/parts). */
  def partitionRange(n: Long, parts: Int, p: Int): (Long, Long) =
    (p.toLong * n / parts, (p.toLong + 1) * n / parts)

  /** The i-th pair: (mix(i) % keys as unsigned, i). */
  @inline def pairKey(i: Long, keys: Long): Long = java.lang.Long.remainderUnsigned(mix(i), keys)

  /** x_j of point i: ((mix(i*10+j) >>> 11) / 2^53) * 2 - 1. */
  @inline def lrFeature(i: Long, j: Int): Double =
    ((mix(i * LrFeatures + j) >>> 11).toDouble / 9007199254740992.0) * 2.0 - 1.0

  /** w_true_j = (j + 1) * (-1)^j. */
  @inline def wTrue(j: Int): Double = if (j % 2 == 0) (j + 1).toDouble else -(j + 1).toDouble

  /** FNV-1a 64 over the UTF-8 bytes of the word. */
  def fnv1a64(word: String): Long = {
    val bytes = word.getBytes(java.nio.charset.StandardCharsets.UTF_8)
    var h = 0xcbf29ce484222325L
    var k = 0
    while (k < bytes.length) {
      h ^= (bytes(k) & 0xffL)
      h *= 0x100000001b3L
      k += 1
    }
    h
  }

  /** An unsigned decimal JSON number. */
  def u(x: Long): String = java.lang.Long.toUnsignedString(x)
}

/** A logistic-regression point. */
case class Point(x: Array[Double], y: Double)

/** The logistic-regression step shared by the LR jobs (same formula as benches/src/protocol.rs). */
object Gradient {
  import Protocol.LrFeatures

  /** One point's gradient contribution under weights `wb`. */
  def of(wb: Array[Double], p: Point): Array[Double] = {
    var dot = 0.0
    var j = 0
    while (j < LrFeatures) { dot += wb(j) * p.x(j); j += 1 }
    val scale = (1.0 / (1.0 + math.exp(-p.y * dot)) - 1.0) * p.y
    val g = new Array[Double](LrFeatures)
    j = 0
    while (j < LrFeatures) { g(j) = p.x(j) * scale; j += 1 }
    g
  }

  /** The sum of two gradients (the reduce of every iteration). */
  def add(a: Array[Double], b: Array[Double]): Array[Double] = {
    val s = new Array[Double](LrFeatures)
    var j = 0
    while (j < LrFeatures) { s(j) = a(j) + b(j); j += 1 }
    s
  }
}

// The Spark peer of the Ember benchmarks: classic Scala RDD jobs, Spark local[2].
//
// Usage: EmberBench --text FILE [--master local[2]] [--launch-ms EPOCH_MS] [--repeat N]
//                   [--only w1,w2,...] [--no-warmup] [--log-level WARN]
//                   [--lr-levels MEMORY_ONLY,MEMORY_ONLY_SER,...]
// --straggler runs the straggler benchmark instead (StragglerBench.scala, its own arguments).
// --lr-levels runs the cached logistic regression once more per storage level (after the other
// workloads), printing "storage_level" in each line: the peer of ember-storage-levels-bench.
// Prints one JSON object per line on stdout (logs go to stderr):
//   {"system":"spark","workload":"jvm_startup","seconds":S,"jvm_seconds":S,"context_seconds":S}
//   {"system":"spark","workload":W,"seconds":S,"answer":{...}}
// Each workload is timed inside the JVM (System.nanoTime around the job), after a warm-up
// phase that runs every workload once on small data (and word count once on the real file).
// With --repeat N each workload runs N times and the fastest run is reported.

import java.util.Locale

import org.apache.spark.{SparkConf, SparkContext}
import org.apache.spark.rdd.RDD
import org.apache.spark.storage.StorageLevel

import Protocol._

object EmberBench {

  def json(workload: String, seconds: Double, answer: String, extra: String = ""): String =
    s"""{"system":"spark","workload":"$workload","seconds":${fmt(seconds)}""" +
      (if (answer.isEmpty) "" else s""","answer":$answer""") + extra + "}"

  def fmt(d: Double): String = String.format(Locale.ROOT, "%.6f", Double.box(d))
  def fmt9(d: Double): String = String.format(Locale.ROOT, "%.9f", Double.box(d))

  def timed[T](f: => T): (T, Double) = {
    val t0 = System.nanoTime()
    val r = f
    (r, (System.nanoTime() - t0) / 1e9)
  }

  // ----- data -----

  def pairs(sc: SparkContext, n: Long, keys: Long): RDD[(Long, Long)] =
    sc.parallelize(0 until Partitions, Partitions).mapPartitionsWithIndex { (p, _) =>
      val (lo, hi) = partitionRange(n, Partitions, p)
      new Iterator[(Long, Long)] {
        private var i = lo
        def hasNext: Boolean = i < hi
        def next(): (Long, Long) = { val r = (pairKey(i, keys), i); i += 1; r }
      }
    }

  def joinRight(sc: SparkContext, keys: Long): RDD[(Long, Long)] =
    sc.parallelize(0 until Partitions, Partitions).mapPartitionsWithIndex { (p, _) =>
      val (lo, hi) = partitionRange(keys, Partitions, p)
      new Iterator[(Long, Long)] {
        private var k = lo
        def hasNext: Boolean = k < hi
        def next(): (Long, Long) = { val r = (k, k * 3); k += 1; r }
      }
    }

  def lrPoints(sc: SparkContext, n: Long): RDD[Point] =
    sc.parallelize(0 until Partitions, Partitions).mapPartitionsWithIndex { (p, _) =>
      val (lo, hi) = partitionRange(n, Partitions, p)
      new Iterator[Point] {
        private var i = lo
        def hasNext: Boolean = i < hi
        def next(): Point = {
          val x = new Array[Double](LrFeatures)
          var dot = 0.0
          var j = 0
          while (j < LrFeatures) { x(j) = lrFeature(i, j); dot += x(j) * wTrue(j); j += 1 }
          i += 1
          Point(x, if (dot > 0.0) 1.0 else -1.0)
        }
      }
    }

  // ----- workloads: each returns its answer as a JSON object -----

  def wordCount(sc: SparkContext, path: String): String = {
    val counts = sc.textFile(path).flatMap(_.split(" ")).filter(_.nonEmpty).map(w => (w, 1L)).reduceByKey(_ + _)
    val (distinct, total, max, checksum) = counts.mapPartitions { it =>
      var d = 0L; var t = 0L; var m = 0L; var c = 0L
      it.foreach { case (w, n) => d += 1; t += n; m = math.max(m, n); c += n * fnv1a64(w) }
      Iterator((d, t, m, c))
    }.reduce((a, b) => (a._1 + b._1, a._2 + b._2, math.max(a._3, b._3), a._4 + b._4))
    s"""{"distinct":$distinct,"total":$total,"max_count":$max,"checksum":${u(checksum)}}"""
  }

  def reduceByKey(sc: SparkContext, n: Long, keys: Long): String = {
    val (k, c) = pairs(sc, n, keys).reduceByKey(_ + _, Partitions).mapPartitions { it =>
      var k = 0L; var c = 0L
      it.foreach { case (key, v) => k += 1; c += key * 31 + v }
      Iterator((k, c))
    }.reduce((a, b) => (a._1 + b._1, a._2 + b._2))
    s"""{"keys":$k,"checksum":${u(c)}}"""
  }

  def groupByKey(sc: SparkContext, n: Long, keys: Long): String = {
    val (g, v, c) = pairs(sc, n, keys).groupByKey(Partitions).mapPartitions { it =>
      var g = 0L; var v = 0L; var c = 0L
      it.foreach { case (key, vs) => val s = vs.size.toLong; g += 1; v += s; c += key * s }
      Iterator((g, v, c))
    }.reduce((a, b) => (a._1 + b._1, a._2 + b._2, a._3 + b._3))
    s"""{"groups":$g,"values":$v,"checksum":${u(c)}}"""
  }

  def join(sc: SparkContext, n: Long, keys: Long): String = {
    val (r, c) = pairs(sc, n, keys).join(joinRight(sc, keys), Partitions).mapPartitions { it =>
      var r = 0L; var c = 0L
      it.foreach { case (_, (v, w)) => r += 1; c += v + w }
      Iterator((r, c))
    }.reduce((a, b) => (a._1 + b._1, a._2 + b._2))
    s"""{"rows":$r,"checksum":${u(c)}}"""
  }

  def sortByKey(sc: SparkContext, n: Long, keys: Long): String = {
    // Per partition: (index, rows, first three keys, last key, sorted within).
    val parts = pairs(sc, n, keys).sortByKey(ascending = true, Partitions).mapPartitionsWithIndex { (idx, it) =>
      var rows = 0L; var first = List.empty[Long]; var last = Long.MinValue; var sorted = true
      it.foreach { case (k, _) =>
        if (rows < 3) first = first :+ k
        if (rows > 0 && k < last) sorted = false
        last = k; rows += 1
      }
      Iterator((idx, rows, first, last, sorted))
    }.collect().sortBy(_._1).filter(_._2 > 0)
    val rows = parts.map(_._2).sum
    val sortedWithin = parts.forall(_._5)
    val sortedAcross = parts.sliding(2).forall(w => w.length < 2 || w(0)._4 <= w(1)._3.head)
    val firstKeys = parts.flatMap(_._3).take(3)
    val lastKey = parts.lastOption.map(p => p._4.toString).getOrElse("null")
    s"""{"rows":$rows,"sorted":${sortedWithin && sortedAcross},"first_keys":[${firstKeys.mkString(",")}],"last_key":$lastKey}"""
  }

  /** The classic cached logistic regression; returns (answer, cache seconds, per-iteration seconds). */
  def logisticRegression(sc: SparkContext, n: Long, iterations: Int,
      level: StorageLevel = StorageLevel.MEMORY_ONLY): (String, Double, Seq[Double]) = {
    val points = lrPoints(sc, n).persist(level)
    val (_, cacheSeconds) = timed(points.count())
    var w = new Array[Double](LrFeatures)
    val times = (1 to iterations).map { _ =>
      val (_, s) = timed {
        val wb = w
        val grad = points.map(p => Gradient.of(wb, p)).reduce(Gradient.add)
        w = Array.tabulate(LrFeatures)(j => wb(j) - grad(j) / n.toDouble)
      }
      s
    }
    points.unpersist(blocking = true)
    (s"""{"w":[${w.map(fmt9).mkString(",")}]}""", cacheSeconds, times)
  }

  // ----- driver -----

  def main(args: Array[String]): Unit = {
    if (args.contains("--straggler")) { StragglerBench.main(args); return }
    if (args.contains("--graph-bench")) { GraphBench.main(args); return }
    val mainMs = System.currentTimeMillis()
    var text: String = null
    var master = "local[2]"
    var launchMs = java.lang.management.ManagementFactory.getRuntimeMXBean.getStartTime
    var repeat = 1
    var only: Set[String] = Set.empty
    var warmup = true
    var logLevel = "WARN"
    var lrLevels: Seq[String] = Seq.empty
    var i = 0
    while (i < args.length) {
      args(i) match {
        case "--text" => text = args(i + 1); i += 1
        case "--master" => master = args(i + 1); i += 1
        case "--launch-ms" => launchMs = args(i + 1).toLong; i += 1
        case "--repeat" => repeat = args(i + 1).toInt; i += 1
        case "--only" => only = args(i + 1).split(",").map(_.trim).filter(_.nonEmpty).toSet; i += 1
        case "--no-warmup" => warmup = false
        case "--log-level" => logLevel = args(i + 1); i += 1
        case "--lr-levels" => lrLevels = args(i + 1).split(",").map(_.trim).filter(_.nonEmpty).toSeq; i += 1
        case other => System.err.println(s"EmberBench: unknown argument $other"); sys.exit(2)
      }
      i += 1
    }
    def want(w: String) = only.isEmpty || only.contains(w)
    if (text == null && want("word_count")) {
      System.err.println("EmberBench: --text FILE is required for word_count"); sys.exit(2)
    }

    val conf = new SparkConf()
      .setAppName("ember-bench")
      .setMaster(master)
      .set("spark.ui.enabled", "false")
      .set("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
    val sc = new SparkContext(conf)
    sc.setLogLevel(logLevel)
    val readyMs = System.currentTimeMillis()
    println(json("jvm_startup", (readyMs - launchMs) / 1e3, "",
      s""","jvm_seconds":${fmt((mainMs - launchMs) / 1e3)},"context_seconds":${fmt((readyMs - mainMs) / 1e3)},"master":"$master""""))

    if (warmup) {
      val (_, s) = timed {
        if (want("word_count")) wordCount(sc, text)
        reduceByKey(sc, 1000000L, 100000L)
        groupByKey(sc, 1000000L, 100000L)
        join(sc, 1000000L, 100000L)
        sortByKey(sc, 1000000L, 100000L)
        logisticRegression(sc, 100000L, 2)
      }
      System.err.println(s"EmberBench: warm-up took ${fmt(s)} s")
    }

    def run(workload: String)(job: => String): Unit = if (want(workload)) {
      val runs = (1 to repeat).map(_ => timed(job))
      val answers = runs.map(_._1).distinct
      if (answers.size != 1) System.err.println(s"EmberBench: $workload answers differ between runs: $answers")
      println(json(workload, runs.map(_._2).min, runs.head._1, s""","runs":[${runs.map(r => fmt(r._2)).mkString(",")}]"""))
    }

    run("word_count")(wordCount(sc, text))
    if (want("logistic_regression")) {
      val results = (1 to repeat).map(_ => logisticRegression(sc, LrPoints, LrIterations))
      val best = results.minBy(_._3.sum)
      val (answer, cacheSeconds, times) = best
      println(json("logistic_regression", times.sum / times.size, answer,
        s""","total_seconds":${fmt(times.sum)},"iterations":${times.size},"cache_seconds":${fmt(cacheSeconds)},"iteration_seconds":[${times.map(fmt).mkString(",")}]"""))
    }
    run("reduce_by_key")(reduceByKey(sc, NPairs, PairKeys))
    run("group_by_key")(groupByKey(sc, NPairs, PairKeys))
    run("join")(join(sc, NPairs, PairKeys))
    run("sort_by_key")(sortByKey(sc, NPairs, PairKeys))
    for (level <- lrLevels) {
      val results = (1 to repeat).map(_ => logisticRegression(sc, LrPoints, LrIterations, StorageLevel.fromString(level)))
      val (answer, cacheSeconds, times) = results.minBy(_._3.sum)
      println(json("logistic_regression", times.sum / times.size, answer,
        s""","storage_level":"$level","total_seconds":${fmt(times.sum)},"cache_seconds":${fmt(cacheSeconds)}"""))
    }
    sc.stop()
  }
}

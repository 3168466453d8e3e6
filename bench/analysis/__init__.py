"""From stored records to numbers: tidy tables, robust statistics, run comparisons, sweeps.

Everything here reads typed records (bench.records) and returns data; nothing writes a file
or draws. The one comparable time of a case (`RoundRecord.comparable_seconds`, summarised as
`comparable_seconds_*` in the summary table) is what every view compares and ranks by.
"""

"""Reference implementations for the course, one module per chapter (`chNN_topic.py`).

Each exercise's body sits between `### BEGIN SOLUTION` and `### END SOLUTION`; `nncourse sync`
copies the whole function into the notebook cell whose nbgrader grade_id names it.
"""

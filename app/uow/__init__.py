"""The unit of work: one transaction per request, followed from the route to COMMIT.

  unit.py      UnitOfWork, its two kinds of session (OrmSession, CoreSession) and RequestContext
  dialect.py   the pipelined psycopg2 dialect: BEGIN and deferred checks ride with the next statement
  prepared.py  PreparedStatement for the hot reads
  request.py   what a request's dependencies hand to its unit of work
  routing.py   the route classes that open, commit and close it (ApiRoute; ScreenRoute in app/web/deps.py)
Group commit (app/transactions/group.py) runs several requests' writes in one UnitOfWork.
"""

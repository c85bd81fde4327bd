# bench/app's twistd peer: the same echo service as echod's "echo" command, on loopback TCP, so
# start-to-ready and the idle daemon's memory compare like with like.
#   twistd3 --pidfile P --logfile L -y echo.tac
from twisted.application import service, strports
from twisted.internet import protocol


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class EchoFactory(protocol.ServerFactory):
    protocol = Echo


application = service.Application("echod")
strports.service("tcp:0:interface=127.0.0.1", EchoFactory()).setServiceParent(application)
